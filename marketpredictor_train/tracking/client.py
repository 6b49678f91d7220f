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


def setup_mlflow() -> None:
    """Prepare MLflow for a command: environment defaults (an explicit setting of the user
    wins) and the default local store."""
    for key, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import mlflow

    if mlflow.tracking.is_tracking_uri_set() or not has_file_store_runs(FILE_STORE_DIR):
        return
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
