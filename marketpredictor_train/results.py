"""Results of library operations: frozen values the CLI renders or writes as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from marketpredictor_train.errors import MptrainError

RESULT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class TrainResult:
    """What one `mptrain train` did. ``to_dict`` is the --output-json document."""

    status: str  # "promoted" | "not_promoted" | "dry_run"
    exit_code: int
    promoted: bool
    passed_validation: bool
    reason: str
    version: str | None
    model_path: str | None
    model_type: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    production_version: str | None
    production_metrics: dict[str, Any] | None
    thresholds: dict[str, float]
    primary_metric: str
    forced: bool
    dry_run: bool
    n_train: int
    n_test: int
    n_features: int
    data_window: dict[str, Any]
    dropped_tickers: dict[str, str]
    timings: dict[str, float]
    duration_s: float
    run_id: str
    mlflow_run_id: str | None
    warnings: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    # The backtest in full (CI, baselines, trading view, per ticker, comparison); None
    # when validation was skipped.
    validation: dict[str, Any] | None = None
    skipped_validation: bool = False
    refit: bool = False
    metrics_of: str = "the saved model, on the backtest"
    report_dir: str | None = None
    report_files: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["warnings"] = list(self.warnings)
        doc["report_files"] = list(self.report_files)
        extra = doc.pop("extra")
        doc.update(extra)
        doc["error"] = None
        doc["schema_version"] = RESULT_SCHEMA_VERSION
        return doc


@dataclass(frozen=True)
class ValidateResult:
    """What one `mptrain validate` found. ``to_dict`` is the --output-json document."""

    status: str  # "passed" | "failed"
    exit_code: int
    passed: bool
    reason: str
    target: str  # "production" | "version" | "model_file"
    version: str | None
    model_path: str
    model_type: str | None
    metrics: dict[str, Any]
    thresholds: dict[str, float]
    primary_metric: str
    production_version: str | None
    production_metrics: dict[str, Any] | None
    n_test: int
    data_window: dict[str, Any]
    validation: dict[str, Any]
    report_dir: str | None
    report_files: tuple[str, ...]
    duration_s: float
    run_id: str
    warnings: tuple[str, ...] = ()
    mlflow_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["warnings"] = list(self.warnings)
        doc["report_files"] = list(self.report_files)
        doc["error"] = None
        doc["schema_version"] = RESULT_SCHEMA_VERSION
        return doc


def failure_document(exc: MptrainError, *, duration_s: float) -> dict[str, Any]:
    """The --output-json document of a run that stopped with an error."""
    return {
        "schema_version": RESULT_SCHEMA_VERSION,
        "status": "failed",
        "exit_code": exc.exit_code,
        "promoted": False,
        "version": None,
        "error": {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint},
        "duration_s": round(duration_s, 3),
    }
