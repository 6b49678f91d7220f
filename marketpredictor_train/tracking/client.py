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


def setup_mlflow(cache_dir: Path | None = None) -> None:
    """Prepare MLflow for a command: environment defaults, the default local store, and a
    SQLite store's tables created under a lock (a new store copied from the empty one kept
    under ``cache_dir``, when given; see :func:`initialise_sqlite_store`)."""
    mlflow_environment()
    import mlflow

    from marketpredictor_train.redact import mask_library_handlers

    mask_library_handlers()  # MLflow's own handler, when the user let MLflow configure it

    if not mlflow.tracking.is_tracking_uri_set() and has_file_store_runs(FILE_STORE_DIR):
        _use_sqlite_beside_file_store()
    initialise_sqlite_store(
        mlflow.get_tracking_uri(),
        template_dir=None if cache_dir is None else cache_dir / TEMPLATE_FOLDER,
    )


def initialise_sqlite_store(uri: str, *, template_dir: Path | None = None) -> None:
    """Create (or upgrade) the tables of a SQLite tracking store holding a file lock beside
    it (``mlflow.db.lock``): MLflow migrates a new database on first use, and several first
    runs that start together would otherwise run the same migrations at once ("duplicate
    column name", "table already exists") and lose their runs. Once per store and process.

    MLflow's migrations of a new database cost about ten CPU-seconds. With
    ``template_dir``, the first new store of an MLflow version leaves an empty copy there
    (its tables only: the default experiment, whose artifact folder is absolute, is
    removed, and MLflow creates it again where the copy is opened), and later new stores
    start as that copy."""
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
        new = not database.exists() or database.stat().st_size == 0
        template = None if template_dir is None else _template_path(template_dir)
        copied = new and template is not None and _copy_template(template, database)
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)  # the tracking tables
        client.search_registered_models(max_results=1)  # the registry's, same database
        if new and not copied and template is not None:
            _save_template(database, template)
    _initialised.add(key)


TEMPLATE_FOLDER = "mlflow"


def _template_path(folder: Path) -> Path:
    from importlib.metadata import version

    return folder / f"empty-mlflow-{version('mlflow')}.db"


def _template_is_sound(path: Path) -> bool:
    """An SQLite file with MLflow's migration stamp and no experiment or run in it."""
    import sqlite3

    try:
        with path.open("rb") as handle:
            if handle.read(16) != b"SQLite format 3\x00":
                return False
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            stamp = connection.execute("SELECT version_num FROM alembic_version").fetchall()
            experiments = connection.execute("SELECT COUNT(*) FROM experiments").fetchone()
            runs = connection.execute("SELECT COUNT(*) FROM runs").fetchone()
        finally:
            connection.close()
    except (OSError, sqlite3.Error):
        return False
    return len(stamp) == 1 and experiments == (0,) and runs == (0,)


def _copy_template(template: Path, database: Path) -> bool:
    """Start ``database`` as a copy of ``template``; False (nothing written) when there is
    no sound template."""
    import shutil

    if not template.is_file() or not _template_is_sound(template):
        return False
    partial = database.with_name(f".{database.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(template, partial)
        os.replace(partial, database)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        log.debug("MLflow store template not used", template=str(template), error=str(exc))
        return False
    log.debug("MLflow store started from its empty template", template=str(template))
    return True


def _save_template(database: Path, template: Path) -> None:
    """Keep an empty copy of the just-created ``database`` as ``template`` (best effort:
    a cache that cannot be written only costs the next new store its migrations)."""
    import shutil
    import sqlite3

    partial = template.with_name(f".{template.name}.{os.getpid()}.tmp")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(database, partial)
        connection = sqlite3.connect(partial)
        try:
            with connection:
                connection.execute("DELETE FROM experiment_tags")
                connection.execute("DELETE FROM experiments")
        finally:
            connection.close()
        if not _template_is_sound(partial):
            raise OSError("the copy is not an empty MLflow store")
        os.replace(partial, template)
    except (OSError, sqlite3.Error) as exc:
        partial.unlink(missing_ok=True)
        log.debug("MLflow store template not saved", template=str(template), error=str(exc))


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
