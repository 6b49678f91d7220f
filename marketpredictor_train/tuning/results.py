"""What tuning returns: a frozen value the CLI renders or writes as ``--output-json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from marketpredictor_train.results import RESULT_SCHEMA_VERSION


@dataclass(frozen=True)
class TuningOutcome:
    """One worker's session on a study, and the study's best trial after it."""

    study_name: str
    storage: str  # the URL with any password masked
    model_type: str
    objective: str
    direction: str
    best_value: float
    best_params: dict[str, Any]  # complete: the model type's defaults under the tuned ones
    best_trial: int
    best_cv_accuracy: float | None
    trials_run: int  # by this worker in this session
    trials_run_by_state: dict[str, int]
    study_trials_by_state: dict[str, int]  # every worker, every session
    fits: int  # fold fits started by this worker in this session
    boosting_rounds: int  # boosting rounds actually fitted by this worker in this session
    pruning: bool
    folds: list[dict[str, Any]]
    data_fingerprint: str
    baseline: str | None
    device: str
    duration_s: float
    mlflow_run_id: str | None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class OptimizeResult:
    """What one ``mptrain optimize`` did. ``to_dict`` is the --output-json document."""

    status: str  # "completed"
    exit_code: int
    tuning: TuningOutcome
    params_file: str | None
    data_window: dict[str, Any]
    n_train: int
    timings: dict[str, float]
    duration_s: float
    run_id: str
    warnings: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        tuning = asdict(self.tuning)
        tuning["warnings"] = list(self.tuning.warnings)
        doc: dict[str, Any] = {
            "schema_version": RESULT_SCHEMA_VERSION,
            "status": self.status,
            "exit_code": self.exit_code,
            **tuning,
            "params_file": self.params_file,
            "data_window": self.data_window,
            "n_train": self.n_train,
            "timings": self.timings,
            "duration_s": self.duration_s,
            "run_id": self.run_id,
            "warnings": list(self.warnings),
            "error": None,
        }
        doc.update(self.extra)
        return doc
