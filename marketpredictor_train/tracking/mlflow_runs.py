"""One MLflow run per `train` and per `validate`: parameters, metrics, tags, the report,
and for `train` the saved version as a registered MLflow model.

A training run is opened when the train starts and closed when it ends (FAILED when an
error stops it), so its duration and status are the train's."""

from __future__ import annotations

import contextvars
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from marketpredictor_train.redact import describe_error, redact

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mlflow import MlflowClient

    from marketpredictor_train.config import Settings
    from marketpredictor_train.store import ModelStore, RegisteredVersion, StoredModel
    from marketpredictor_train.tracking.registry import Registry, RegistryStatus
    from marketpredictor_train.validation.backtest import ValidationReport

log = structlog.get_logger(__name__)

SEED_METRICS = ("accuracy", "precision", "recall", "f1")
_MAX_TAG = 5000
_MAX_PARAM = 6000


@dataclass(frozen=True)
class TrackingOutcome:
    """What tracking a training run came to: its MLflow run (None when it could not be
    logged), where the registry stands, and the problems met (as warnings)."""

    mlflow_run_id: str | None
    registry: RegistryStatus | None = None
    warnings: tuple[str, ...] = field(default=())


@contextmanager
def training_run(
    settings: Settings, run_id: str, *, start_later: bool = False
) -> Iterator[TrainingRun]:
    """The MLflow run of one `mptrain train`, open for the whole block; an exception that
    leaves the block closes it FAILED (KILLED on Ctrl-C) with the error as a tag.

    With ``start_later`` the caller calls :meth:`TrainingRun.start` when it suits it (the
    train: once its fits' quantised matrices are built, so MLflow's libraries and store
    are not in memory beside the training matrix); the run's start time is still the
    block's, and anything that needs the run before then opens it at once."""
    run = TrainingRun(settings, run_id)
    if not start_later:
        run.start()
    try:
        yield run
    except BaseException as exc:
        run.abort(exc)
        raise
    finally:
        run.close()


class TrainingRun:
    """One `mptrain train` as one MLflow run (see :func:`training_run`). With
    ``settings.mlflow`` off, or after the first tracking failure, every method does
    nothing; failures are warnings, never a failed train."""

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.settings = settings
        self.run_id = run_id
        self._mlflow_run_id: str | None = None
        self.registry: Registry | None = None
        self.warnings: list[str] = []
        self._client: MlflowClient | None = None
        self._params: set[str] = set()
        self._registered: dict[str, RegisteredVersion] = {}
        self._starting: threading.Thread | None = None
        self._started = False
        self._began_ms = int(time.time() * 1000)  # the run's start time, whenever it opens

    @property
    def mlflow_run_id(self) -> str | None:
        """The MLflow run's id (None with tracking off or failed), once it is open."""
        self._ready()
        return self._mlflow_run_id

    @property
    def name(self) -> str:
        """``train-dry-<run id>`` for a dry run; else ``train-<run id>`` until a version is
        saved, then ``train-<version>``."""
        return f"train-{'dry-' if self.settings.dry_run else ''}{self.run_id}"

    def start(self, *, after: float = 0.0) -> None:
        """Open the run. Importing MLflow and opening its store takes seconds, so unless a
        caller's MLflow run is active in this thread (the new run is then its child), that
        happens in a background thread, ``after`` seconds from now, while the model fits;
        every other method waits for it first."""
        if self._started:
            return
        self._started = True
        if not self.settings.mlflow:
            return
        loaded = sys.modules.get("mlflow")
        if loaded is not None and loaded.active_run() is not None:
            self._start(nested=True)
            return
        context = contextvars.copy_context()  # log lines keep the run id bound to them

        def begin() -> None:
            time.sleep(after)
            self._start()

        self._starting = threading.Thread(
            target=context.run, args=(begin,), name="mptrain-mlflow", daemon=True
        )
        self._starting.start()

    def _ready(self) -> None:
        if not self._started:  # not started yet (start_later): open it now
            self.start()
        starting, self._starting = self._starting, None
        if starting is not None:
            starting.join()

    def _start(self, *, nested: bool = False) -> None:
        try:
            import mlflow
            from mlflow.tracking.context.registry import resolve_tags
            from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

            from marketpredictor_train.tracking.client import (
                experiment_id,
                setup_mlflow,
                would_create_store,
            )
            from marketpredictor_train.tracking.registry import Registry

            if self.settings.dry_run and would_create_store():
                log.info(
                    "Dry run: not tracked in MLflow (a dry run creates no ./mlflow.db; set "
                    "MLFLOW_TRACKING_URI or track a real run first)"
                )
                return
            setup_mlflow(self.settings.cache_dir)
            client = mlflow.MlflowClient()
            experiment = experiment_id(client, self.settings.experiment_name)
            tags = {
                "mptrain.command": "train",
                "mptrain.run_id": self.run_id,
                "mptrain.status": "running",
                "mptrain.dry_run": str(self.settings.dry_run).lower(),
                "mptrain.forced": str(self.settings.force).lower(),
            }
            if nested:
                opened = mlflow.start_run(
                    experiment_id=experiment, run_name=self.name, tags=tags, nested=True
                ).info
            else:
                # The tags mlflow.start_run would add (user, source, git commit); the run
                # becomes this thread's active run when a model is logged in it.
                opened = client.create_run(
                    experiment,
                    start_time=self._began_ms,
                    tags=resolve_tags({**tags, MLFLOW_RUN_NAME: self.name}),
                    run_name=self.name,
                ).info
            self._client = client
            self._mlflow_run_id = opened.run_id
            params = run_params(self.settings)
            self._log(params=params)
            self._params = set(params)
            self.registry = Registry(self.settings, client)
        except Exception as exc:  # tracking must not stop a train
            self._fail(exc)

    def _activate(self) -> None:
        """Make the run the active MLflow run of this thread (logging a model needs it)."""
        self._ready()
        if self._mlflow_run_id is None:
            return
        import mlflow
        from mlflow.tracking import fluent

        active = mlflow.active_run()
        if active is None or active.info.run_id != self._mlflow_run_id:
            # Resuming a run refuses one outside the experiment of a caller's
            # mlflow.set_experiment(); this run is in mptrain's own experiment by design.
            chosen = fluent._active_experiment_id
            fluent._active_experiment_id = None
            try:
                mlflow.start_run(run_id=self._mlflow_run_id, nested=active is not None)
            finally:
                fluent._active_experiment_id = chosen

    def register(self, model: StoredModel) -> RegisteredVersion | None:
        """Log a saved version as an MLflow model in this run and register it; its model
        version, or None when tracking is off or the registry failed (a warning)."""
        self._ready()
        if self._mlflow_run_id is None or self.registry is None:
            return None
        try:
            self._activate()
        except Exception as exc:  # tracking must not stop a train
            self._fail(exc)
            return None
        registered = self.registry.log_and_register(model)
        if registered is not None:
            self._registered[model.version] = registered
            try:
                self._log(tags={"mptrain.mlflow_model_version": registered.version})
            except Exception as exc:  # tracking must not stop a train
                self._fail(exc)
        return registered

    def finish(  # noqa: PLR0913 - what a run logs, each named by the caller
        self,
        store: ModelStore | None,
        *,
        params: dict[str, Any],
        metrics: dict[str, Any],
        n_features: int,
        tickers: Sequence[str],
        status: str,
        promoted: bool,
        version: str | None,
        reason: str,
        extra_metrics: dict[str, float] | None = None,
        artifacts: list[Path] | None = None,
    ) -> TrackingOutcome:
        """Log the run's outcome, point the registry's alias at production (``store``;
        None leaves the registry alone) and close the run FINISHED."""
        self._ready()
        if self._mlflow_run_id is None or self._client is None:
            return TrackingOutcome(None, None, tuple(self.warnings))
        run_id = self._mlflow_run_id
        try:
            # A run with --skip-validation has no metrics: log what there is.
            values = {k: float(metrics[k]) for k in (*SEED_METRICS, "n_samples") if k in metrics}
            values["n_features"] = float(n_features)
            values.update(extra_metrics or {})
            # The run's own parameters win over a model parameter of the same name.
            model_params = {k: v for k, v in params.items() if k not in self._params}
            self._log(
                params={**model_params, "tickers": ",".join(tickers)},
                metrics=values,
                tags={
                    "mptrain.status": status,
                    "mptrain.promoted": str(promoted).lower(),
                    "mptrain.version": version or "",
                    "mptrain.decision": reason[:_MAX_TAG],
                },
            )
            for path in artifacts or []:
                self._client.log_artifact(run_id, str(path), artifact_path="report")
            if version is not None:
                self._client.update_run(run_id, name=f"train-{version}")
            registered = self._registered.get(version or "")
            if registered is not None and self.registry is not None:
                self.registry.tag(
                    registered,
                    {"mptrain.status": status, "mptrain.decision": reason[:_MAX_TAG]},
                )
        except Exception as exc:  # tracking must not take a finished run down with it
            self._fail(exc)
            return TrackingOutcome(None, None, tuple(self.warnings))
        registry = None
        if self.registry is not None and store is not None and not self.settings.dry_run:
            registry = self.registry.sync(store)
            if registry is not None and version in self._registered:
                registry = _with_model_version(registry, self._registered[version].version)
        if self.registry is not None and self.registry.warning:
            self.warnings.append(self.registry.warning)
        self._end("FINISHED")
        return TrackingOutcome(run_id, registry, tuple(self.warnings))

    def abort(self, exc: BaseException) -> None:
        """Close the run after the error that stopped the train."""
        self._ready()
        if self._mlflow_run_id is None:
            return
        message = redact(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
        try:
            self._log(tags={"mptrain.status": "failed", "mptrain.error": message[:_MAX_TAG]})
        except Exception as error:  # the train's own error is what the user must see
            log.warning(f"MLflow tracking failed: {describe_error(error)}")
        self._end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")

    def close(self) -> None:
        """Close a run that neither finished nor failed (nothing is lost)."""
        self._ready()
        if self._mlflow_run_id is not None:
            self._end("FINISHED")

    def _log(
        self,
        *,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        assert self._client is not None and self._mlflow_run_id is not None
        now = int(time.time() * 1000)
        self._client.log_batch(
            self._mlflow_run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, str(_param(v))[:_MAX_PARAM]) for k, v in (params or {}).items()],
            tags=[RunTag(k, v) for k, v in (tags or {}).items()],
        )

    def _end(self, status: str) -> None:
        run_id, self._mlflow_run_id = self._mlflow_run_id, None
        if run_id is None:
            return
        try:
            import mlflow

            active = mlflow.active_run()
            if active is not None and active.info.run_id == run_id:
                mlflow.end_run(status)
            elif self._client is not None:
                self._client.set_terminated(run_id, status=status)
        except Exception as exc:
            log.warning(f"MLflow tracking failed: {describe_error(exc)}")

    def _fail(self, exc: Exception) -> None:
        warning = f"MLflow tracking failed: {describe_error(exc)}"
        log.warning(warning)
        self.warnings.append(warning)
        self._end("FAILED")
        self.registry = None


def run_params(settings: Settings) -> dict[str, Any]:
    """The parameters of a training run known when it starts: data, label, model type,
    seed and the promotion gate."""
    params: dict[str, Any] = {
        "model_type": settings.model_type,
        "source": settings.source,
        "period": settings.period,
        "horizon": settings.horizon,
        "dead_band": settings.dead_band,
        "seed": settings.seed,
        "backtest_months": settings.backtest_months,
        "embargo_days": settings.embargo_days,
        "primary_metric": settings.primary_metric,
        "cost_per_trade": settings.cost_per_trade,
        "min_accuracy": settings.min_accuracy,
        "min_precision": settings.min_precision,
        "min_recall": settings.min_recall,
        "min_f1": settings.min_f1,
        "optimize": settings.optimize,
        "refit": settings.refit,
        "skip_validation": settings.skip_validation,
    }
    if settings.optimize:
        params["trials"] = settings.trials
    return params


def _with_model_version(status: RegistryStatus, model_version: str) -> RegistryStatus:
    import dataclasses

    return dataclasses.replace(status, model_version=model_version)


def log_validation_run(  # noqa: PLR0913 - what a run logs, each named by the caller
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
    try:
        import mlflow

        from marketpredictor_train.tracking.client import experiment_id, setup_mlflow

        setup_mlflow(settings.cache_dir)
        experiment = experiment_id(mlflow.MlflowClient(), settings.experiment_name)
        with mlflow.start_run(
            experiment_id=experiment, run_name=run_name, nested=mlflow.active_run() is not None
        ) as run:
            mlflow.log_params({k: _param(v) for k, v in params.items()})
            mlflow.log_metrics(metrics)
            mlflow.set_tags(tags)
            for folder, paths in artifacts.items():
                for path in paths:
                    mlflow.log_artifact(str(path), artifact_path=folder)
            return run.info.run_id, None
    except Exception as exc:  # tracking must not take a finished run down with it
        warning = f"MLflow tracking failed: {describe_error(exc)}"
        log.warning(warning)
        return None, warning


def _param(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


def report_metrics(report: ValidationReport | None) -> dict[str, float]:
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
        "accuracy_ci_effective_n": report.accuracy_ci.get("effective_n"),
        "baseline_always_up_accuracy": report.baselines["always_up"]["accuracy"],
        "baseline_yesterday_accuracy": report.baselines["yesterday_direction"]["accuracy"],
        "strategy_cumulative_return": report.trading.strategy["cumulative_return"],
        "strategy_sharpe": report.trading.strategy["sharpe"],
        "strategy_max_drawdown": report.trading.strategy["max_drawdown"],
        "buy_and_hold_cumulative_return": report.trading.buy_and_hold["cumulative_return"],
        "buy_and_hold_sharpe": report.trading.buy_and_hold["sharpe"],
        "sharpe_difference_vs_buy_and_hold": report.trading.sharpe_difference,
    }
    trading = report.trading
    for name, interval in (
        ("strategy_sharpe_ci", trading.sharpe_ci),
        ("buy_and_hold_sharpe_ci", trading.buy_and_hold_sharpe_ci),
        ("sharpe_difference_ci", trading.sharpe_difference_ci),
    ):
        if interval is not None:
            values[f"{name}_low"], values[f"{name}_high"] = interval.bounds
    comparison = report.comparison
    if comparison is not None:
        primary = comparison.primary_metric
        values[f"vs_production_{primary}_difference"] = comparison.primary_difference
        values["vs_production_mcnemar_p"] = comparison.mcnemar["p_value"]
        for name in SEED_METRICS:
            values[f"production_{name}"] = comparison.production[name]
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and math.isfinite(float(v))
    }
