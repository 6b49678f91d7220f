"""Tuning sessions: ``tune`` (one worker's session on a study, run by ``mptrain optimize``
and ``train --optimize``) and ``choose_params`` (which parameters ``train`` fits with, and
why)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from marketpredictor_train.errors import ConfigError, MptrainError, TrainingError
from marketpredictor_train.progress import report
from marketpredictor_train.tuning.best_params import (
    BEST_PARAMS_FILE,
    BEST_PARAMS_FORMAT,
    best_params_path,
    read_best_params,
    write_best_params,
)
from marketpredictor_train.tuning.results import TuningOutcome
from marketpredictor_train.tuning.study import DIRECTION, OBJECTIVE

if TYPE_CHECKING:
    import optuna

    from marketpredictor_train.config import Settings
    from marketpredictor_train.dataset import Dataset
    from marketpredictor_train.models.base import ModelType
    from marketpredictor_train.progress import ProgressCallback, StepTimer

log = structlog.get_logger(__name__)

PARAM_SOURCE_DEFAULTS = "defaults"
PARAM_SOURCE_FILE = BEST_PARAMS_FILE
PARAM_SOURCE_OPTIMIZED = "optimize"
DRY_RUN_STORAGE = "in memory (dry run)"


def tune(
    settings: Settings,
    model_cls: type[ModelType],
    dataset: Dataset,
    *,
    device: str,
    progress: ProgressCallback | None = None,
) -> TuningOutcome:
    """Run ``settings.trials`` trials (or until ``optimize_timeout_s``) on the study in
    ``settings.storage`` (default: the local SQLite file) and return its best trial.

    Only ``dataset.train`` is read: folds are cut from it, the backtest is never seen."""

    from marketpredictor_train.tuning.cv import walk_forward_folds
    from marketpredictor_train.tuning.objective import Objective, TuningData
    from marketpredictor_train.tuning.study import (
        data_fingerprint,
        default_study_name,
        enqueue_baseline,
        open_study,
        worker_id,
    )

    _route_optuna_logging()
    started = time.perf_counter()
    X, y = dataset.xy(dataset.train, model_cls.feature_dtype)
    days = dataset.train.get_column("date").to_physical().to_numpy()  # no copy
    folds = walk_forward_folds(days, y, n_folds=settings.cv_folds, purge_gap=settings.purge_gap)
    fingerprint, described = data_fingerprint(settings, model_cls, dataset, folds)
    study_name = settings.study_name or default_study_name(model_cls, settings, fingerprint)

    storage, shown = _storage(settings)
    study = open_study(
        storage,
        study_name=study_name,
        settings=settings,
        model_cls=model_cls,
        fingerprint=fingerprint,
        described=described,
    )
    baseline = enqueue_baseline(study, settings, model_cls)
    log.info(
        "Study opened",
        study=study_name,
        storage=shown,
        trials_in_study=len(study.get_trials(deepcopy=False)),
        folds=len(folds),
        purge_gap_days=settings.purge_gap,
        pruning=settings.pruning,
    )

    objective = Objective(
        model_cls,
        TuningData(X=X, y=y, folds=folds),
        device=device,
        seed=settings.seed,
        pruning=settings.pruning,
    )
    watcher = _TrialWatcher(progress, settings.trials)
    callbacks: list[Any] = [watcher]
    tracker = None
    if settings.mlflow and not (settings.dry_run and _would_create_tracking_store()):
        from marketpredictor_train.tracking.trials import TrialTracker

        tracker = TrialTracker(
            experiment_name=settings.experiment_name,
            study_name=study_name,
            model_type=model_cls.name,
            storage=shown,
            run_id=str(structlog.contextvars.get_contextvars().get("run_id", "")),
            worker=worker_id(),
            settings_params={
                "model_type": model_cls.name,
                "trials": settings.trials,
                "cv_folds": settings.cv_folds,
                "purge_gap": settings.purge_gap,
                "horizon": settings.horizon,
                "pruning": settings.pruning,
                "source": settings.source,
                "period": settings.period,
                "data_fingerprint": fingerprint,
            },
        )
        tracker.start()
        callbacks.append(tracker)

    report(progress, "trials", 0, settings.trials, "starting")
    failed = True
    try:
        study.optimize(
            objective,
            n_trials=settings.trials,
            timeout=settings.optimize_timeout_s,
            callbacks=callbacks,
        )
        failed = False
    except MptrainError:
        raise
    except Exception as exc:
        raise TrainingError(
            f"Optimization failed - a {model_cls.name} trial raised: {exc}",
            hint="The study keeps the trials done so far; rerun to resume it.",
        ) from exc
    finally:
        if tracker is not None:
            tracker.finish(best=_best_or_none(study), failed=failed)

    best = _best_or_none(study)
    if best is None:
        raise TrainingError(
            f"Optimization failed - no trial of study '{study_name}' completed",
            hint="Run more trials (--trials), or tune without pruning (--no-pruning).",
        )
    all_trials = study.get_trials(deepcopy=False)
    best_trial = study.best_trial
    warnings = tuple(w for w in (tracker.warning if tracker else None,) if w)
    return TuningOutcome(
        study_name=study_name,
        storage=shown,
        model_type=model_cls.name,
        objective=OBJECTIVE,
        direction=DIRECTION,
        best_value=float(best["value"]),
        best_params=dict(best["params"]),
        best_trial=int(best["number"]),
        best_cv_accuracy=best_trial.user_attrs.get("cv_accuracy"),
        trials_run=watcher.done,
        trials_run_by_state=dict(watcher.states),
        study_trials_by_state=dict(Counter(t.state.name.lower() for t in all_trials)),
        fits=watcher.fits,
        boosting_rounds=watcher.rounds,
        pruning=settings.pruning,
        folds=[f.to_dict() for f in folds],
        data_fingerprint=fingerprint,
        baseline=baseline,
        device=device,
        duration_s=round(time.perf_counter() - started, 3),
        mlflow_run_id=tracker.parent_run_id if tracker else None,
        warnings=warnings,
    )


def _best_or_none(study: optuna.Study) -> dict[str, Any] | None:
    from marketpredictor_train.models.registry import get_model_type

    try:
        trial = study.best_trial
    except ValueError:  # no completed trial yet
        return None
    model_type = study.user_attrs.get("mptrain.model_type")
    defaults = dict(get_model_type(model_type).default_params) if model_type else {}
    return {"number": trial.number, "value": trial.value, "params": {**defaults, **trial.params}}


class _TrialWatcher:
    """Logs each trial this worker finishes and reports progress with the best score."""

    def __init__(self, progress: ProgressCallback | None, total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self.fits = 0
        self.rounds = 0
        self.states: Counter[str] = Counter()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.done += 1
        self.states[trial.state.name.lower()] += 1
        self.fits += int(trial.user_attrs.get("fits", 0))
        self.rounds += int(trial.user_attrs.get("boosting_rounds", 0))
        try:
            best_value: float | None = study.best_value
        except ValueError:
            best_value = None
        log.info(
            "Trial finished",
            trial=trial.number,
            state=trial.state.name.lower(),
            cv_log_loss=None if trial.value is None else round(trial.value, 6),
            best_cv_log_loss=None if best_value is None else round(best_value, 6),
        )
        description = (
            "no trial completed yet" if best_value is None else (f"best log loss {best_value:.4f}")
        )
        report(self.progress, "trials", self.done, self.total, description)


def _storage(settings: Settings) -> tuple[optuna.storages.BaseStorage, str]:
    """The study storage and how to show it. A dry run writes nothing into the models
    folder: without --storage its study lives in memory."""
    from marketpredictor_train.tuning.storage import describe_storage, open_storage, storage_url

    if settings.dry_run and not settings.storage:
        import optuna

        return optuna.storages.InMemoryStorage(), DRY_RUN_STORAGE
    url = storage_url(settings)
    return open_storage(url, heartbeat_s=settings.trial_heartbeat_s), describe_storage(url)


def _would_create_tracking_store() -> bool:
    from marketpredictor_train.tracking.client import would_create_store

    return would_create_store()


def _route_optuna_logging() -> None:
    """Optuna's own stderr handler would bypass ours (and the JSON log file), and its
    "Trial N finished" lines would repeat our one line per trial: warnings only."""
    import optuna

    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def data_window(settings: Settings, dataset: Dataset) -> dict[str, Any]:
    """The data the parameters were tuned on (dates of the training part and backtest)."""
    return {
        "source": settings.source,
        "period": settings.period,
        "tickers": sorted(dataset.train.get_column("ticker").unique().to_list()),
        **dataset.window.to_dict(),
    }


def best_params_document(
    settings: Settings, outcome: TuningOutcome, dataset: Dataset
) -> dict[str, Any]:
    """The content of best_hyperparameters.json."""
    return {
        "format": BEST_PARAMS_FORMAT,
        "model_type": outcome.model_type,
        "params": outcome.best_params,
        "score": outcome.best_value,
        "metric": outcome.objective,
        "direction": outcome.direction,
        "cv_accuracy": outcome.best_cv_accuracy,
        "best_trial": outcome.best_trial,
        "trials": outcome.study_trials_by_state,
        "study_name": outcome.study_name,
        "storage": outcome.storage,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_window": data_window(settings, dataset),
        "horizon": settings.horizon,
        "dead_band": settings.dead_band,
        "feature_spec_hash": dataset.spec.hash,
        "cv": {"folds": len(outcome.folds), "purge_gap_days": settings.purge_gap},
        "seed": settings.seed,
    }


def choose_params(
    settings: Settings,
    model_cls: type[ModelType],
    dataset: Dataset,
    *,
    device: str,
    timer: StepTimer,
    progress: ProgressCallback | None = None,
) -> tuple[dict[str, Any], str]:
    """The parameters ``train`` fits with and where they came from: freshly tuned with
    ``--optimize``; else ``best_hyperparameters.json`` when it is for this model type;
    else the model type's defaults. The choice is logged either way."""
    path = best_params_path(settings)
    if settings.optimize:
        with timer("optimize"):
            outcome = tune(settings, model_cls, dataset, device=device, progress=progress)
        if settings.dry_run:
            log.info("Dry run - tuned parameters not written", path=str(path))
        else:
            write_best_params(path, best_params_document(settings, outcome, dataset))
        log.info(
            "Using tuned parameters",
            param_source=PARAM_SOURCE_OPTIMIZED,
            study=outcome.study_name,
            best_trial=outcome.best_trial,
            cv_log_loss=round(outcome.best_value, 6),
            params=outcome.best_params,
        )
        return dict(outcome.best_params), PARAM_SOURCE_OPTIMIZED

    defaults = dict(model_cls.default_params)
    document = read_best_params(path)
    if document is None:
        log.info("Using the model type's default parameters", param_source=PARAM_SOURCE_DEFAULTS)
        return defaults, PARAM_SOURCE_DEFAULTS
    if document["model_type"] != model_cls.name:
        log.info(
            f"{BEST_PARAMS_FILE} is for another model type; using the default parameters",
            param_source=PARAM_SOURCE_DEFAULTS,
            file_model_type=document["model_type"],
            model_type=model_cls.name,
        )
        return defaults, PARAM_SOURCE_DEFAULTS
    check_tuning_window(document, settings, dataset)
    params = {**defaults, **document["params"]}
    log.info(
        f"Using tuned parameters from {BEST_PARAMS_FILE}",
        param_source=PARAM_SOURCE_FILE,
        path=str(path),
        study=document.get("study_name"),
        tuned_on=document.get("date"),
        cv_log_loss=document.get("score"),
        params=params,
    )
    return params, PARAM_SOURCE_FILE


def check_tuning_window(document: dict[str, Any], settings: Settings, dataset: Dataset) -> None:
    """Tuned parameters are only as honest as the rows they were chosen on: refuse them
    (ConfigError, exit 3) when the tuning saw rows after this run's training part (its
    backtest, or the purge gap before it); warn, naming each, when the tuning's data,
    horizon, dead band, purge gap or feature spec differ from this run's."""
    from datetime import date

    tuned = document.get("data_window") or {}
    window = dataset.window
    tuned_end = tuned.get("train_end")
    if tuned_end and date.fromisoformat(str(tuned_end)) > window.train_end:
        raise ConfigError(
            f"{BEST_PARAMS_FILE} was tuned on rows up to {tuned_end}, after this run's "
            f"training part (it ends {window.train_end}; the backtest starts "
            f"{window.backtest_start}): the parameters were chosen with rows this run "
            "backtests on",
            hint="Tune again on this run's window: `mptrain optimize` with the same "
            "--backtest-months, --period and data options, or `mptrain train --optimize`.",
        )
    current = {
        "horizon": settings.horizon,
        "dead band": settings.dead_band,
        "purge gap (horizon + embargo)": settings.purge_gap,
        "feature spec": dataset.spec.hash,
        "source": settings.source,
        "tickers": sorted(dataset.train.get_column("ticker").unique().to_list()),
    }
    tuned_values = {
        "horizon": document.get("horizon"),
        "dead band": document.get("dead_band"),
        "purge gap (horizon + embargo)": tuned.get("purge_gap_days"),
        "feature spec": document.get("feature_spec_hash"),
        "source": tuned.get("source"),
        "tickers": sorted(tuned.get("tickers") or []) or None,
    }
    differ = [
        f"{name} ({tuned_values[name]} vs {value})"
        if name not in ("feature spec", "tickers")
        else name
        for name, value in current.items()
        if tuned_values[name] is not None and tuned_values[name] != value
    ]
    if differ:
        log.warning(
            f"{BEST_PARAMS_FILE} was tuned with another " + ", ".join(differ) + "; using it "
            "anyway (rerun `mptrain optimize` with this run's options, or --optimize, to retune)",
            file_horizon=document.get("horizon"),
            horizon=settings.horizon,
        )
