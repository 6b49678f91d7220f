"""What one tuning session returns: a frozen value (``OptimizeResult`` in results.py carries it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
