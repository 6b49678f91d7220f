"""Opening a study: its name, sampler and pruner, the checks that every worker joining it
tunes the same thing, and the baseline trial enqueued first."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from typing import TYPE_CHECKING, Any, Literal

import structlog

from marketpredictor_train.errors import ConfigError, MptrainError

if TYPE_CHECKING:
    import optuna

    from marketpredictor_train.config import Settings
    from marketpredictor_train.dataset import Dataset
    from marketpredictor_train.models.base import ModelType
    from marketpredictor_train.tuning.cv import Fold

log = structlog.get_logger(__name__)

# Validation log loss: a proper score of the probabilities, smooth where accuracy on
# near-coin-flip data is a step function of a handful of rows, and the quantity the
# XGBoost/LightGBM pruning callbacks watch round by round.
OBJECTIVE = "log_loss"
DIRECTION: Literal["minimize"] = "minimize"

# Trials that must complete before the pruner compares anyone against them.
PRUNER_STARTUP_TRIALS = 5

ATTR_MODEL_TYPE = "mptrain.model_type"
ATTR_FINGERPRINT = "mptrain.data_fingerprint"
ATTR_OBJECTIVE = "mptrain.objective"
ATTR_DATA = "mptrain.data"


def worker_id() -> str:
    """This process in a farm: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def data_fingerprint(
    settings: Settings, model_cls: type[ModelType], dataset: Dataset, folds: list[Fold]
) -> tuple[str, dict[str, Any]]:
    """A short hash of everything that makes two trials' scores comparable: the model
    type, the rows and columns tuned on, the label, and the folds."""
    train = dataset.train
    described = {
        "model_type": model_cls.name,
        "feature_spec_hash": dataset.spec.hash,
        "horizon": settings.horizon,
        "dead_band": settings.dead_band,
        "tickers": sorted(train.get_column("ticker").unique().to_list()),
        "train_start": dataset.window.train_start.isoformat(),
        "train_end": dataset.window.train_end.isoformat(),
        "n_rows": train.height,
        "folds": [f.to_dict() for f in folds],
    }
    digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:10]
    return digest, described


def default_study_name(model_cls: type[ModelType], settings: Settings, fingerprint: str) -> str:
    """Same data, same name: a rerun resumes its study; new data starts a new one."""
    return f"mptrain-{model_cls.name}-h{settings.horizon}-{fingerprint}"


def open_study(
    storage: optuna.storages.BaseStorage,
    *,
    study_name: str,
    settings: Settings,
    model_cls: type[ModelType],
    fingerprint: str,
    described: dict[str, Any],
) -> optuna.Study:
    """Create the study or join it; ConfigError when it tunes something else."""
    import optuna

    from marketpredictor_train.tuning.pruning import LatestValueMedianPruner

    pruner: optuna.pruners.BasePruner = (
        LatestValueMedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS)
        if settings.pruning
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=DIRECTION,
        pruner=pruner,
        load_if_exists=True,
    )
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise ConfigError(
            f"Study '{study_name}' maximizes its objective; mptrain's studies minimize "
            "validation log loss",
            hint="Choose another --study-name.",
        )
    attrs = study.user_attrs
    known_type = attrs.get(ATTR_MODEL_TYPE)
    if known_type is None:
        study.set_user_attr(ATTR_MODEL_TYPE, model_cls.name)
        study.set_user_attr(ATTR_OBJECTIVE, OBJECTIVE)
        study.set_user_attr(ATTR_FINGERPRINT, fingerprint)
        study.set_user_attr(ATTR_DATA, described)
    elif known_type != model_cls.name:
        raise ConfigError(
            f"Study '{study_name}' tunes model type '{known_type}', not '{model_cls.name}'",
            hint=f"Use --model-type {known_type}, or another --study-name.",
        )
    elif attrs.get(ATTR_FINGERPRINT) != fingerprint:
        log.warning(
            "This study's earlier trials were scored on other data or folds; their scores "
            "are not strictly comparable with this worker's",
            study=study_name,
            study_data=attrs.get(ATTR_FINGERPRINT),
            this_data=fingerprint,
        )
    study.sampler = optuna.samplers.TPESampler(
        seed=_sampler_seed(settings, len(study.get_trials(deepcopy=False))),
        multivariate=True,
    )
    return study


def _sampler_seed(settings: Settings, trials_so_far: int) -> int:
    """Reproducible for one worker on its own study; distinct across a farm's workers,
    whose random start-up samples would otherwise coincide."""
    seed = settings.seed + trials_so_far
    if settings.storage:
        salt = hashlib.sha256(worker_id().encode()).digest()
        seed += int.from_bytes(salt[:4], "big")
    return seed % (2**32)


def enqueue_baseline(
    study: optuna.Study, settings: Settings, model_cls: type[ModelType]
) -> str | None:
    """Queue the production model's parameters (same model type) as the next trial, or
    the model type's defaults when production is of another type or absent; a study that
    already ran them is left alone. Returns what was enqueued, for the log."""
    params = dict(model_cls.default_params)
    source = "defaults"
    production = _production_params(settings, model_cls)
    if production is not None:
        version, prod_params = production
        params.update(prod_params)
        source = f"production model {version}"
    queued = {k: v for k, v in params.items() if isinstance(v, bool | int | float | str)}
    before = len(study.get_trials(deepcopy=False))
    study.enqueue_trial(queued, user_attrs={"mptrain.baseline": source}, skip_if_exists=True)
    if len(study.get_trials(deepcopy=False)) == before:
        return None
    log.info("Baseline trial enqueued", baseline=source)
    return source


def _production_params(
    settings: Settings, model_cls: type[ModelType]
) -> tuple[str, dict[str, Any]] | None:
    from marketpredictor_train.store import ModelStore

    try:
        production = ModelStore(settings.models_dir).load_production()
    except MptrainError as exc:
        log.warning("Production model unreadable; not replayed as a trial", error=exc.message)
        return None
    if production is None:
        return None
    manifest = production.manifest
    if manifest.get("model_type") != model_cls.name:
        return None
    return str(manifest.get("version")), dict(manifest.get("params") or {})
