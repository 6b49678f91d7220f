"""The MLflow Model Registry follows the model store.

Every saved version is logged as an MLflow model ("models from code": the small model code
in :mod:`marketpredictor_train.tracking.pyfunc_model`, the version's own ``.bin`` as its one
artifact, ``marketpredictor-train`` as its requirement; nothing pickled) and registered as
a version of one registered model (``registered_model_name``, default ``marketpredictor``),
tagged with the mptrain version, horizon, feature spec hash, metrics and decision. The
alias (``champion_alias``, default ``champion``) names the model version whose mptrain
version is production, so ``models:/marketpredictor@champion`` is the production model.

The store is the source of truth. A registry problem is a warning, never a failed or
undone promotion, and the next command that reaches the registry moves the alias to
whatever production is then (a manual ``cp`` included).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from marketpredictor_train.errors import MptrainError
from marketpredictor_train.redact import describe_error
from marketpredictor_train.store.history import RegisteredVersion

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from marketpredictor_train.config import Settings
    from marketpredictor_train.store import ModelStore, StoredModel

log = structlog.get_logger(__name__)

T = TypeVar("T")

MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
MODEL_ARTIFACT = "model_file"  # the key of the .bin among the MLflow model's artifacts
MODEL_NAME = "model"  # the MLflow model's name in its run
VERSION_TAG = "mptrain.version"
RUN_ID_TAG = "mptrain.run_id"
TAGGED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier")
_RESOURCE_MISSING = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}
_RESOURCE_EXISTS = {"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"}


@dataclass(frozen=True, slots=True)
class RegistryStatus:
    """Where the registry stands after a command: the model version the alias names
    (``champion_version``) and the mptrain version that is production, which it is."""

    registered_model: str
    alias: str
    champion_version: str | None
    production: str | None
    moved: bool = False  # whether this command moved the alias
    model_version: str | None = None  # train: the model version of the version it saved

    @property
    def uri(self) -> str:
        return f"models:/{self.registered_model}@{self.alias}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "registered_model": self.registered_model,
            "alias": self.alias,
            "uri": self.uri,
            "champion_version": self.champion_version,
            "production": self.production,
            "moved": self.moved,
            "model_version": self.model_version,
        }


class Registry:
    """The registered model of one store. Every call is guarded: the first failure becomes
    :attr:`warning` and every later call of this command is skipped (an unreachable
    server costs its timeout once)."""

    def __init__(self, settings: Settings, client: MlflowClient | None = None) -> None:
        self.name = settings.registered_model_name
        self.alias = settings.champion_alias
        self.experiment_name = settings.experiment_name
        self.cache_dir = settings.cache_dir
        self.warning: str | None = None
        self._client = client
        self._known: dict[str, RegisteredVersion] = {}  # mptrain version -> model version

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            from marketpredictor_train.tracking.client import setup_mlflow

            setup_mlflow(self.cache_dir)
            self._client = MlflowClient()
        return self._client

    # ----------------------------------------------------------------- registering

    def log_and_register(self, model: StoredModel) -> RegisteredVersion | None:
        """Log ``model`` as an MLflow model in the active run and register it."""
        return self._guard(
            f"registering version {model.version}", lambda: self._log_and_register(model)
        )

    def ensure(self, model: StoredModel) -> RegisteredVersion | None:
        """The model version of ``model``: found by its mptrain version, or logged (in a
        run of its own, ``register-<version>``) and registered now."""
        return self._guard(f"registering version {model.version}", lambda: self._ensure(model))

    def tag(self, registered: RegisteredVersion, tags: dict[str, str]) -> None:
        def run() -> None:
            for key, value in tags.items():
                self.client.set_model_version_tag(
                    registered.registered_model, registered.version, key, value
                )

        self._guard(f"tagging model version {registered.version}", run)

    # ----------------------------------------------------------------- the alias

    def sync(self, store: ModelStore) -> RegistryStatus | None:
        """Point the alias at the model version of the store's production model
        (registering that version first if it never was); None when the registry could
        not be reached or production could not be read (see :attr:`warning`)."""
        if self.warning is not None:
            return None
        try:
            production = store.production()
        except MptrainError as exc:
            self._warn(
                f"the production model could not be read ({exc.message}), so the alias "
                f"'{self.alias}' was left as it is"
            )
            return None
        if production is None:
            return RegistryStatus(self.name, self.alias, None, None)
        return self._guard(
            f"pointing the alias '{self.alias}' at version {production.version}",
            lambda: self._sync(store, production),
        )

    def _sync(self, store: ModelStore, production: StoredModel) -> RegistryStatus:
        try:  # register the versioned file when it is there (prod_model.bin is a copy)
            model = store.get(production.version)
        except MptrainError:
            model = production
        registered = self._ensure(model)
        current = self._alias_version()
        moved = current != registered.version
        if moved:
            self.client.set_registered_model_alias(self.name, self.alias, registered.version)
            log.info(
                f"MLflow alias '{self.alias}' now names {self.name} version "
                f"{registered.version} (mptrain version {production.version})",
                previous=current,
            )
        return RegistryStatus(
            self.name, self.alias, registered.version, production.version, moved=moved
        )

    # ----------------------------------------------------------------- internals

    def _ensure(self, model: StoredModel) -> RegisteredVersion:
        found = self._find(model)
        if found is not None:
            return found
        import mlflow

        from marketpredictor_train.tracking.client import experiment_id

        experiment = experiment_id(self.client, self.experiment_name)
        with mlflow.start_run(
            experiment_id=experiment,
            run_name=f"register-{model.version}",
            tags={"mptrain.command": "register", VERSION_TAG: model.version},
            nested=mlflow.active_run() is not None,
        ):
            return self._log_and_register(model)

    def _find(self, model: StoredModel) -> RegisteredVersion | None:
        """The model version of ``model``, told apart from a same-named version of another
        store by the id of the run that trained it."""
        if model.version in self._known:
            return self._known[model.version]
        query = f"name = '{self.name}' and tags.`{VERSION_TAG}` = '{model.version}'"
        trained_by = model.manifest.get("run_id")
        if isinstance(trained_by, str) and trained_by.isalnum():
            query += f" and tags.`{RUN_ID_TAG}` = '{trained_by}'"
        found = self.client.search_model_versions(query)
        if not found:
            return None
        newest = max(found, key=lambda mv: int(mv.version))
        self._known[model.version] = RegisteredVersion(self.name, str(newest.version))
        return self._known[model.version]

    def _log_and_register(self, model: StoredModel) -> RegisteredVersion:
        import mlflow

        # The model takes OHLCV in any of the shapes the file source reads, so it has no
        # fixed signature; MLflow would warn that it cannot infer one.
        with _quiet("mlflow.pyfunc"):
            info = mlflow.pyfunc.log_model(
                name=MODEL_NAME,
                python_model=str(MODEL_CODE),
                artifacts={MODEL_ARTIFACT: str(model.path)},
                conda_env=model_environment(),
                tags={VERSION_TAG: model.version},
                await_registration_for=0,
            )
        self._registered_model()
        created: ModelVersion = self.client.create_model_version(
            self.name,
            source=info.model_uri,
            run_id=info.run_id,
            tags=version_tags(model),
            description=_describe(model),
            model_id=info.model_id,
            await_creation_for=0,
        )
        registered = RegisteredVersion(self.name, str(created.version))
        self._known[model.version] = registered
        log.info(
            f"Registered {self.name} version {registered.version} (mptrain version "
            f"{model.version})",
            model_uri=registered.uri,
        )
        return registered

    def _registered_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
            return
        except MlflowException as exc:
            if exc.error_code not in _RESOURCE_MISSING:
                raise
        try:
            self.client.create_registered_model(
                self.name,
                tags={"mptrain.alias": self.alias},
                description=(
                    "MarketPredictor's stock-direction models: one model version per saved "
                    f"mptrain version; the alias '{self.alias}' names the production model "
                    f"(models:/{self.name}@{self.alias})."
                ),
            )
        except MlflowException as exc:  # created a moment ago by another process
            if exc.error_code not in _RESOURCE_EXISTS:
                raise

    def _alias_version(self) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.name, self.alias).version)
        except MlflowException as exc:
            if exc.error_code in _RESOURCE_MISSING:
                return None
            raise

    def _guard(self, action: str, call: Callable[[], T]) -> T | None:
        if self.warning is not None:
            return None
        try:
            return call()
        except Exception as exc:  # the registry must never fail a command of the store
            reason = (describe_error(exc).splitlines() or [type(exc).__name__])[0][:500]
            self._warn(f"{action} failed: {reason}")
            return None

    def _warn(self, what: str) -> None:
        self.warning = (
            f"MLflow model registry: {what}. The model store is unaffected; the alias "
            f"'{self.alias}' of {self.name} follows production at the next command that "
            "reaches the registry (train, validate or rollback)."
        )
        log.warning(self.warning)


def version_tags(model: StoredModel) -> dict[str, str]:
    """The tags of a model version: what mptrain knows of the model without its run."""
    manifest = model.manifest
    label = manifest.get("label") or {}
    validation = manifest.get("validation") or {}
    trained_with = (manifest.get("library_versions") or {}).get("marketpredictor-train")
    tags = {
        VERSION_TAG: model.version,
        "mptrain.model_type": str(manifest.get("model_type")),
        "mptrain.horizon": str(label.get("horizon", 1)),
        "mptrain.dead_band": str(label.get("dead_band", 0.0)),
        "mptrain.feature_spec_hash": str(manifest.get("feature_spec_hash")),
        RUN_ID_TAG: str(manifest.get("run_id")),
        "mptrain.validation": str(validation.get("status", "validated")),
        "mptrain.package_version": str(trained_with or _package_version()),
    }
    metrics = manifest.get("metrics") or {}
    for name in (*TAGGED_METRICS, "n_samples"):
        value = metrics.get(name)
        if isinstance(value, int | float) and math.isfinite(value):
            tags[f"mptrain.metric.{name}"] = str(value)
    return tags


def model_environment() -> dict[str, Any]:
    """The environment of the MLflow model: this Python, MLflow and this mptrain."""
    import platform

    import mlflow

    requirements = [f"mlflow=={mlflow.__version__}", f"marketpredictor-train=={_package_version()}"]
    return {
        "name": "mptrain",
        "channels": ["conda-forge"],
        "dependencies": [f"python={platform.python_version()}", "pip", {"pip": requirements}],
    }


@contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Only errors from ``logger`` for the block."""
    target = logging.getLogger(logger)
    level = target.level
    target.setLevel(logging.ERROR)
    try:
        yield
    finally:
        target.setLevel(level)


def _describe(model: StoredModel) -> str:
    manifest = model.manifest
    horizon = (manifest.get("label") or {}).get("horizon", 1)
    return (
        f"mptrain version {model.version}: {manifest.get('model_type')}, P(up) over "
        f"{horizon} trading day(s); load with marketpredictor_train.load_model or "
        "mlflow.pyfunc.load_model."
    )


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("marketpredictor-train")
    except PackageNotFoundError:  # a source tree that is not installed
        return "0.0.0"
