"""All MLflow code: the runs of `train` (open for the whole train) and `validate`, the
Model Registry that follows the model store (:mod:`.registry`), the pyfunc model code of
every registered version (:mod:`.pyfunc_model`, run only by MLflow) and the runs of tuning
trials. With no configuration MLflow's default local store in the working directory is
used (:mod:`.client`), so `mlflow ui` started there shows the runs and the registered
model; MLFLOW_TRACKING_URI wins."""

from marketpredictor_train.tracking.client import mlflow_environment

mlflow_environment()  # before any module of this package imports MLflow

from marketpredictor_train.tracking.mlflow_runs import (  # noqa: E402 - after the environment
    TrackingOutcome,
    TrainingRun,
    log_validation_run,
    report_metrics,
    training_run,
)
from marketpredictor_train.tracking.registry import Registry, RegistryStatus  # noqa: E402

__all__ = [
    "Registry",
    "RegistryStatus",
    "TrackingOutcome",
    "TrainingRun",
    "log_validation_run",
    "report_metrics",
    "training_run",
]
