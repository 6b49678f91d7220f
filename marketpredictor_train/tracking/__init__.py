"""All MLflow code: runs of `train` and `validate` (parameters, metrics, the model file,
the decision, the report) and of tuning trials. With no configuration MLflow's default
local store in the working directory is used, so `mlflow ui` started there shows the runs;
MLFLOW_TRACKING_URI wins."""

from marketpredictor_train.tracking.mlflow_runs import (
    log_training_run,
    log_validation_run,
    report_metrics,
)

__all__ = ["log_training_run", "log_validation_run", "report_metrics"]
