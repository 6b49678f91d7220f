"""The validation stage of `train`, as the training flow calls it: leakage guards on the
dataset, the backtest and champion comparison, the gate's decision, what a refit or a
skipped validation means for the saved model, and the report next to the version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from marketpredictor_train.store.store import REPORTS_DIR_NAME
from marketpredictor_train.validation.metrics import SEED_METRICS

if TYPE_CHECKING:
    from marketpredictor_train.config import Settings
    from marketpredictor_train.data import LoadedData
    from marketpredictor_train.dataset import Dataset
    from marketpredictor_train.models.base import ModelType
    from marketpredictor_train.store import ModelStore
    from marketpredictor_train.validation.backtest import ValidationReport
    from marketpredictor_train.validation.gate import GateDecision

log = structlog.get_logger(__name__)

REPORTS_DIR = REPORTS_DIR_NAME

METRICS_OF_VALIDATED = "the saved model, on the backtest"
METRICS_OF_REFIT = (
    "the validated model before the refit; the saved model was refit on every row, "
    "backtest included, and has no out-of-sample metrics of its own"
)
METRICS_OF_SKIPPED = "none: validation was skipped"
REFIT_NOTE = (
    "Refit (--refit): the model that passed the gate was refit with the same parameters on "
    "the training and backtest rows, and that refit model was saved. The metrics in this "
    "report are those of the validated model before the refit, not of the saved model."
)


@dataclass(frozen=True)
class ValidationStage:
    """What the validation stage concluded. ``production`` has the shape the store step
    uses: version, metrics (production on the common rows), common_new (the new model on
    those rows), warnings."""

    report: ValidationReport | None
    metrics: dict[str, Any]
    production: dict[str, Any]
    decision: GateDecision

    @property
    def skipped(self) -> bool:
        return self.report is None


def guard_dataset(settings: Settings, loaded: LoadedData, dataset: Dataset) -> Dataset:
    """Purge training rows whose label reaches into the backtest and stop the run if any
    feature looks ahead (see :mod:`marketpredictor_train.validation.leakage`)."""
    from marketpredictor_train.validation.leakage import check_no_lookahead, enforce_purge

    dataset = enforce_purge(dataset, loaded.frame, settings.horizon)
    check_no_lookahead(loaded.frame, dataset.spec, dataset.window.train_end)
    return dataset


def validate_new_model(
    settings: Settings,
    *,
    model: ModelType,
    dataset: Dataset,
    loaded: LoadedData,
    store: ModelStore,
) -> ValidationStage:
    """Backtest the fitted model, compare it with production on the same rows and decide;
    with --skip-validation only decide (never promote unless forced)."""
    from marketpredictor_train.validation.backtest import backtest_new_model
    from marketpredictor_train.validation.gate import decide, decide_unvalidated

    if settings.skip_validation:
        log.warning(
            "Validation skipped (--skip-validation): no backtest, no comparison, no report; "
            "the model is promoted only with --force"
        )
        return ValidationStage(
            report=None,
            metrics={},
            production={
                "version": _production_version(store),
                "metrics": None,
                "common_new": None,
                "warnings": [],
            },
            decision=decide_unvalidated(force=settings.force, dry_run=settings.dry_run),
        )
    report = backtest_new_model(settings, model=model, dataset=dataset, loaded=loaded, store=store)
    comparison = report.comparison
    production = {
        "version": report.production_version,
        "metrics": comparison["production"] if comparison else None,
        "common_new": comparison["new"] if comparison else None,
        "warnings": list(report.warnings),
    }
    decision = decide(
        report.metrics,
        settings.thresholds,
        production_metrics=production["metrics"],
        challenger_on_common_rows=production["common_new"],
        primary_metric=settings.primary_metric,
        force=settings.force,
        dry_run=settings.dry_run,
    )
    return ValidationStage(report, dict(report.metrics), production, decision)


def _production_version(store: ModelStore) -> str | None:
    from marketpredictor_train.errors import MptrainError

    try:
        production = store.production()
    except MptrainError:
        return None
    return production.version if production else None


def manifest_fields(
    stage: ValidationStage,
    *,
    data_window: dict[str, Any],
    refit_rows: int | None,
    refit_train_end: str | None,
) -> dict[str, Any]:
    """Manifest entries saying what the saved model's metrics are: the backtest metrics
    of this very model, none (validation skipped), or none because it was refit (the
    validated model's metrics kept apart, under ``refit``)."""
    if stage.skipped:
        return {
            "metrics": {},
            "validation": {"status": "skipped", "metrics_of": METRICS_OF_SKIPPED},
        }
    if refit_rows is None:
        return {"validation": {"status": "validated", "metrics_of": METRICS_OF_VALIDATED}}
    return {
        "metrics": {},
        "n_train": refit_rows,
        # `mptrain validate` scores only rows after train_end: for a refit model that is
        # after the backtest it learned from.
        "data_window": {**data_window, "train_end": refit_train_end, "refit": True},
        "validation": {"status": "refit", "metrics_of": METRICS_OF_REFIT},
        "refit": {
            "n_rows": refit_rows,
            "train_end": refit_train_end,
            "validated_metrics": stage.metrics,
            "note": REFIT_NOTE,
        },
    }


def report_folder(settings: Settings, *, version: str | None, run_id: str) -> Path:
    """Where a train run's report goes: --report-dir when given, else next to the saved
    version (models/reports/<version>/), else (dry run) logs/reports/dry_run_<time>_<run>/."""
    if settings.report_dir is not None:
        return Path(settings.report_dir)
    if version is not None:
        return Path(settings.models_dir) / REPORTS_DIR / version
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    return Path(settings.logs_dir) / REPORTS_DIR / f"dry_run_{stamp}_{run_id}"


def write_train_report(
    settings: Settings,
    stage: ValidationStage,
    *,
    version: str | None,
    run_id: str,
    status: str,
    promoted: bool,
    decision: GateDecision,
    refit: bool,
) -> tuple[Path | None, list[Path], str | None]:
    """Write the report of a validated run; returns (folder, files, warning). A report
    that cannot be written is a warning: the model is already saved (and maybe promoted)."""
    from marketpredictor_train.validation.report import write_report

    if stage.report is None:
        return None, [], None
    folder = report_folder(settings, version=version, run_id=run_id)
    notes = [REFIT_NOTE] if refit else []
    decision_doc = {
        "status": status,
        "promoted": promoted,
        "passed": decision.passed,
        "forced": bool(promoted and not decision.passed),
        "reason": decision.reason,
        "version": version,
        "refit": refit,
        "metrics_of": METRICS_OF_REFIT if refit else METRICS_OF_VALIDATED,
        "notes": notes,
    }
    title = f"Validation report - {'version ' + version if version else 'dry run ' + run_id}"
    try:
        files = write_report(stage.report, folder, title=title, decision=decision_doc)
    except OSError as exc:
        warning = f"The validation report could not be written to {folder}: {exc}"
        log.warning(warning)
        return None, [], warning
    log.info("Validation report written", path=str(folder / "report.html"))
    return folder, files, None


def tracking_metrics(report: ValidationReport | None) -> dict[str, float]:
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
        "baseline_always_up_accuracy": report.baselines["always_up"]["accuracy"],
        "baseline_yesterday_accuracy": report.baselines["yesterday_direction"]["accuracy"],
        "strategy_cumulative_return": report.trading.strategy["cumulative_return"],
        "strategy_sharpe": report.trading.strategy["sharpe"],
        "strategy_max_drawdown": report.trading.strategy["max_drawdown"],
        "buy_and_hold_cumulative_return": report.trading.buy_and_hold["cumulative_return"],
    }
    if report.comparison:
        primary = report.comparison["primary_metric"]
        values[f"vs_production_{primary}_difference"] = report.comparison["primary_difference"]
        values["vs_production_mcnemar_p"] = report.comparison["mcnemar"]["p_value"]
        for name in SEED_METRICS:
            values[f"production_{name}"] = report.comparison["production"][name]
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and math.isfinite(float(v))
    }
