"""MLflow tracking of training runs (parameters, the seed's metrics, the model file, the
promotion decision). With no configuration MLflow's default local store in the working
directory is used, so `mlflow ui` started there shows the runs; MLFLOW_TRACKING_URI wins."""

from marketpredictor_train.tracking.mlflow_runs import log_training_run, log_validation_run

__all__ = ["log_training_run", "log_validation_run"]
