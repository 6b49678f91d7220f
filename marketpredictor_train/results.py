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

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["warnings"] = list(self.warnings)
        extra = doc.pop("extra")
        doc.update(extra)
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
