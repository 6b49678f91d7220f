"""One MLflow run per `train` and per `validate`: parameters, metrics, tags, the model file
and the report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from marketpredictor_train.config import Settings
    from marketpredictor_train.validation.backtest import ValidationReport

log = structlog.get_logger(__name__)

SEED_METRICS = ("accuracy", "precision", "recall", "f1")


def log_training_run(  # noqa: PLR0913 - what a run logs, each named by the caller
    settings: Settings,
    *,
    run_id: str,
    model_type: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    n_features: int,
    status: str,
    promoted: bool,
    version: str | None,
    model_path: str | None,
    reason: str,
    extra_metrics: dict[str, float] | None = None,
    artifacts: list[Path] | None = None,
) -> tuple[str | None, str | None]:
    """Log the run; returns (MLflow run id, warning). Tracking problems never undo or fail
    a training run that already saved its model: they come back as a warning."""
    # A run with --skip-validation has no metrics: log what there is.
    values = {k: float(metrics[k]) for k in (*SEED_METRICS, "n_samples") if k in metrics}
    values["n_features"] = float(n_features)
    values.update(extra_metrics or {})
    return _log_run(
        settings,
        run_name=f"train-{version or run_id}",
        params={
            **params,
            "model_type": model_type,
            "period": settings.period,
            "horizon": settings.horizon,
            "source": settings.source,
        },
        metrics=values,
        tags={
            "mptrain.command": "train",
            "mptrain.run_id": run_id,
            "mptrain.status": status,
            "mptrain.promoted": str(promoted).lower(),
            "mptrain.version": version or "",
            "mptrain.decision": reason[:5000],
            "mptrain.dry_run": str(settings.dry_run).lower(),
            "mptrain.forced": str(settings.force).lower(),
        },
        artifacts={"model": [Path(model_path)] if model_path else [], "report": artifacts or []},
    )


def log_validation_run(  # noqa: PLR0913 - what a run logs, each named by the caller
    settings: Settings,
    *,
    run_id: str,
    target: str,
    version: str | None,
    model_type: str | None,
    metrics: dict[str, Any],
    status: str,
    reason: str,
    extra_metrics: dict[str, float] | None = None,
    artifacts: list[Path] | None = None,
) -> tuple[str | None, str | None]:
    """Log one `mptrain validate` as its own MLflow run (metrics, report, verdict), so
    decay between retrainings shows in the same experiment as the training runs."""
    values = {k: float(metrics[k]) for k in (*SEED_METRICS, "n_samples") if k in metrics}
    values.update(extra_metrics or {})
    return _log_run(
        settings,
        run_name=f"validate-{version or run_id}",
        params={
            "model_type": model_type or "",
            "period": settings.period,
            "source": settings.source,
            "target": target,
        },
        metrics=values,
        tags={
            "mptrain.command": "validate",
            "mptrain.run_id": run_id,
            "mptrain.status": status,
            "mptrain.version": version or "",
            "mptrain.decision": reason[:5000],
        },
        artifacts={"report": artifacts or []},
    )


def _log_run(
    settings: Settings,
    *,
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: dict[str, list[Path]],
) -> tuple[str | None, str | None]:
    # MLflow's own log handler would bypass ours (and the JSON log file).
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    try:
        import mlflow

        mlflow.set_experiment(settings.experiment_name)
        with mlflow.start_run(run_name=run_name) as run:
            mlflow.log_params({k: _param(v) for k, v in params.items()})
            mlflow.log_metrics(metrics)
            mlflow.set_tags(tags)
            for folder, paths in artifacts.items():
                for path in paths:
                    mlflow.log_artifact(str(path), artifact_path=folder)
            return run.info.run_id, None
    except Exception as exc:  # tracking must not take a finished run down with it
        warning = f"MLflow tracking failed: {exc}"
        log.warning(warning)
        return None, warning


def _param(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


def report_metrics(report: ValidationReport | None) -> dict[str, float]:
    """Numbers beyond the seed's four for the MLflow run (only defined, finite values)."""
    import math

    if report is None:
        return {}
    values: dict[str, Any] = {
        "roc_auc": report.metrics.get("roc_auc"),
        "log_loss": report.metrics.get("log_loss"),
        "brier": report.metrics.get("brier"),
        "accuracy_ci_low": report.accuracy_ci["low"],
        "accuracy_ci_high": report.accuracy_ci["high"],
        "accuracy_ci_effective_n": report.accuracy_ci.get("effective_n"),
        "baseline_always_up_accuracy": report.baselines["always_up"]["accuracy"],
        "baseline_yesterday_accuracy": report.baselines["yesterday_direction"]["accuracy"],
        "strategy_cumulative_return": report.trading.strategy["cumulative_return"],
        "strategy_sharpe": report.trading.strategy["sharpe"],
        "strategy_max_drawdown": report.trading.strategy["max_drawdown"],
        "buy_and_hold_cumulative_return": report.trading.buy_and_hold["cumulative_return"],
        "buy_and_hold_sharpe": report.trading.buy_and_hold["sharpe"],
        "sharpe_difference_vs_buy_and_hold": report.trading.sharpe_difference,
    }
    trading = report.trading
    for name, interval in (
        ("strategy_sharpe_ci", trading.sharpe_ci),
        ("buy_and_hold_sharpe_ci", trading.buy_and_hold_sharpe_ci),
        ("sharpe_difference_ci", trading.sharpe_difference_ci),
    ):
        if interval is not None:
            values[f"{name}_low"], values[f"{name}_high"] = interval.bounds
    comparison = report.comparison
    if comparison is not None:
        primary = comparison.primary_metric
        values[f"vs_production_{primary}_difference"] = comparison.primary_difference
        values["vs_production_mcnemar_p"] = comparison.mcnemar["p_value"]
        for name in SEED_METRICS:
            values[f"production_{name}"] = comparison.production[name]
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and math.isfinite(float(v))
    }
