"""Write one MLflow run per training run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from marketpredictor_train.config import Settings

log = structlog.get_logger(__name__)

SEED_METRICS = ("accuracy", "precision", "recall", "f1")


def log_training_run(
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


def log_validation_run(
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
