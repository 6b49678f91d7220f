"""How mptrain talks to MLflow: the environment MLflow runs in, the default local store and
the experiment every run goes to.

With no ``MLFLOW_TRACKING_URI`` MLflow's default local store is used: SQLite in
``./mlflow.db`` (artifacts in ``./mlruns/``), which also holds the Model Registry, so
``mlflow ui`` started in the same folder shows runs and registered models. MLflow itself
keeps using a ``./mlruns`` folder that already holds runs of its file store; mptrain uses
``./mlflow.db`` there too, says so once, and keeps the new artifacts in ``./mlartifacts/``
so the two stores never share a folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import structlog

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = structlog.get_logger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
FILE_STORE_DIR = Path("mlruns")
SEPARATE_ARTIFACTS_DIR = Path("mlartifacts")
# The MLflow UI opens an experiment tagged so on its runs (the machine-learning view), not
# on the GenAI overview.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

_ENV_DEFAULTS = {
    # MLflow's own log handler would bypass ours (and the JSON log file).
    "MLFLOW_CONFIGURE_LOGGING": "false",
    # Its "View run at" line would land on stdout, which carries --json documents.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    # Progress bars for copying a few local files would break the console's lines.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # Else a uv project in the working directory (not this package's) would be copied into
    # every logged model and decide its requirements.
    "MLFLOW_UV_AUTO_DETECT": "false",
}
_noted: set[str] = set()
_initialised: set[str] = set()
# A first run creates MLflow's tables in seconds; a waiter gives up (a tracking warning)
# after this.
SQLITE_INIT_LOCK_TIMEOUT_S = 120.0


def mlflow_environment() -> None:
    """MLflow's environment defaults (an explicit setting of the user wins). They must be
    in place before ``import mlflow``, which configures MLflow's logging as it loads: the
    tracking package applies them when it is imported, before any of its modules imports
    MLflow."""
    for key, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)


def setup_mlflow() -> None:
    """Prepare MLflow for a command: environment defaults, the default local store, and a
    SQLite store's tables created under a lock."""
    mlflow_environment()
    import mlflow

    from marketpredictor_train.redact import mask_library_handlers

    mask_library_handlers()  # MLflow's own handler, when the user let MLflow configure it

    if not mlflow.tracking.is_tracking_uri_set() and has_file_store_runs(FILE_STORE_DIR):
        _use_sqlite_beside_file_store()
    initialise_sqlite_store(mlflow.get_tracking_uri())


def initialise_sqlite_store(uri: str) -> None:
    """Create (or upgrade) the tables of a SQLite tracking store holding a file lock beside
    it (``mlflow.db.lock``): MLflow migrates a new database on first use, and several first
    runs that start together would otherwise run the same migrations at once ("duplicate
    column name", "table already exists") and lose their runs. Once per store and process."""
    if not uri.startswith("sqlite:///"):
        return
    database = Path(unquote(uri[len("sqlite:///") :].split("?", 1)[0]))
    if not database.name or str(database) == ":memory:":
        return
    key = str(database.resolve())
    if key in _initialised and database.exists():
        return
    import mlflow
    from filelock import FileLock

    database.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{database}.lock", timeout=SQLITE_INIT_LOCK_TIMEOUT_S):
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)  # the tracking tables
        client.search_registered_models(max_results=1)  # the registry's, same database
    _initialised.add(key)


def _use_sqlite_beside_file_store() -> None:
    import mlflow

    mlflow.set_tracking_uri(DEFAULT_TRACKING_URI)
    where = str(Path.cwd())
    if where not in _noted:
        _noted.add(where)
        log.warning(
            "MLflow: ./mlruns holds runs of MLflow's file store; mptrain now tracks runs and "
            "the model registry in ./mlflow.db (SQLite, shown by `mlflow ui` here) with "
            "artifacts in ./mlartifacts. The earlier runs stay where they are: "
            "`mlflow ui --backend-store-uri ./mlruns` shows them. Set MLFLOW_TRACKING_URI "
            "to choose the store."
        )


def would_create_store() -> bool:
    """Whether logging a run now would create MLflow's default local store (./mlflow.db,
    ./mlruns): no tracking URI is set and neither exists yet. A dry run creates none."""
    import mlflow

    if mlflow.tracking.is_tracking_uri_set():
        return False
    return not Path("mlflow.db").exists() and not FILE_STORE_DIR.exists()


def has_file_store_runs(folder: Path) -> bool:
    """Whether ``folder`` holds experiments of MLflow's file store (``<id>/meta.yaml``)."""
    try:
        return any(
            entry.is_dir() and entry.name.isdigit() and (entry / "meta.yaml").exists()
            for entry in folder.iterdir()
        )
    except OSError:
        return False


def experiment_id(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created (for the runs view of the UI) if missing."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is None:
        artifact_location = None
        if client.tracking_uri == DEFAULT_TRACKING_URI and has_file_store_runs(FILE_STORE_DIR):
            artifact_location = SEPARATE_ARTIFACTS_DIR.resolve().as_uri()
        try:
            return client.create_experiment(
                name,
                artifact_location=artifact_location,
                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
            )
        except MlflowException:  # another process created it a moment ago
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if EXPERIMENT_KIND_TAG not in found.tags:
        client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return found.experiment_id
