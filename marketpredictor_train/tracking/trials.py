"""MLflow records of tuning: one parent run per worker and study, and a nested run per
trial as it finishes (parameters, CV log loss and accuracy, state, rounds fitted), so one
tracking server (``MLFLOW_TRACKING_URI``) collects every worker of a farm as it goes.

Tracking never stops tuning: the first MLflow error is logged as a warning and the rest
of the run goes untracked.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog

from marketpredictor_train.redact import describe_error

if TYPE_CHECKING:
    import optuna

log = structlog.get_logger(__name__)


class TrialTracker:
    """An Optuna callback logging each finished trial of this worker to MLflow."""

    def __init__(
        self,
        *,
        experiment_name: str,
        study_name: str,
        model_type: str,
        storage: str,
        run_id: str,
        worker: str,
        settings_params: dict[str, Any],
    ) -> None:
        self.experiment_name = experiment_name
        self.study_name = study_name
        self.model_type = model_type
        self.storage = storage
        self.run_id = run_id
        self.worker = worker  # host:pid of this process in a farm
        self.settings_params = settings_params
        self.parent_run_id: str | None = None
        self.warning: str | None = None
        self.trials_logged = 0
        self._client: Any = None
        self._experiment = ""

    def start(self) -> None:
        """Open this worker's parent run."""
        try:
            from mlflow.tracking import MlflowClient

            from marketpredictor_train.tracking.client import experiment_id, setup_mlflow

            setup_mlflow()
            self._client = MlflowClient()
            self._experiment = experiment_id(self._client, self.experiment_name)
            run = self._client.create_run(
                self._experiment,
                run_name=f"optimize-{self.study_name}-{self.worker}",
                tags={
                    "mptrain.kind": "optimize",
                    "mptrain.run_id": self.run_id,
                    "mptrain.study": self.study_name,
                    "mptrain.storage": self.storage,
                    "mptrain.worker": self.worker,
                    "mptrain.model_type": self.model_type,
                },
            )
            self.parent_run_id = run.info.run_id
            self._log(self.parent_run_id, params=self.settings_params)
        except Exception as exc:  # tracking must not stop tuning
            self._fail(exc)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.parent_run_id is None:
            return
        try:
            from optuna.trial import TrialState

            attrs = trial.user_attrs
            metrics: dict[str, float] = {
                "fits": float(attrs.get("fits", 0)),
                "boosting_rounds": float(attrs.get("boosting_rounds", 0)),
            }
            if trial.state == TrialState.COMPLETE and trial.value is not None:
                metrics["cv_log_loss"] = float(trial.value)
                if "cv_accuracy" in attrs:
                    metrics["cv_accuracy"] = float(attrs["cv_accuracy"])
            if trial.duration is not None:
                metrics["duration_s"] = trial.duration.total_seconds()
            run = self._client.create_run(
                self._experiment,
                run_name=f"trial-{trial.number}",
                tags={
                    "mlflow.parentRunId": self.parent_run_id,
                    "mptrain.kind": "trial",
                    "mptrain.study": self.study_name,
                    "mptrain.trial_number": str(trial.number),
                    "mptrain.trial_state": trial.state.name,
                    "mptrain.worker": str(attrs.get("worker", self.worker)),
                },
            )
            self._log(run.info.run_id, params=trial.params, metrics=metrics)
            status = "FINISHED" if trial.state == TrialState.COMPLETE else "KILLED"
            if trial.state == TrialState.FAIL:
                status = "FAILED"
            self._client.set_terminated(run.info.run_id, status=status)
            self.trials_logged += 1
        except Exception as exc:  # tracking must not stop tuning
            self._fail(exc)

    def finish(self, *, best: dict[str, Any] | None, failed: bool = False) -> None:
        """Close the parent run with the study's best result so far."""
        if self.parent_run_id is None:
            return
        try:
            if best is not None:
                self._log(
                    self.parent_run_id,
                    params={f"best.{k}": v for k, v in best["params"].items()},
                    metrics={
                        "best_cv_log_loss": float(best["value"]),
                        "best_trial": float(best["number"]),
                        "trials_logged": float(self.trials_logged),
                    },
                )
            self._client.set_terminated(
                self.parent_run_id, status="FAILED" if failed else "FINISHED"
            )
        except Exception as exc:  # tracking must not stop tuning
            self._fail(exc)

    def _log(
        self,
        run_id: str,
        *,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        self._client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)[:6000]) for k, v in (params or {}).items()],
        )

    def _fail(self, exc: Exception) -> None:
        self.warning = f"MLflow tracking of trials failed: {describe_error(exc)}"
        log.warning(self.warning)
        self.parent_run_id = None
