"""Fixtures shared by the whole suite: every test runs in its own working directory with a
clean environment, so models/, logs/, the MLflow store and the data cache never leak."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

# XGBoost, LightGBM and scikit-learn each bring their own OpenMP runtime, whose idle
# threads spin by default. In one test process, on a machine with few or busy cores, the
# spinning threads of one runtime starve the other's: a fit of a fraction of a second
# took a minute. Sleeping idle threads change no result, only the waiting. Set before any
# of them is imported; worker processes the tests start inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# pytest rewrites every test module's asserts on import and caches the result beside it,
# unless bytecode writing is off (PYTHONDONTWRITEBYTECODE, set on some machines): then
# each session, and each xdist worker, rewrites all of them again. The cache is the
# suite's own (__pycache__ is ignored by git); the package under test is unaffected.
sys.dont_write_bytecode = False


def _empty_mlflow_db(config: pytest.Config) -> Path | None:
    """Where pytest's cache keeps an empty MLflow database of the installed MLflow version
    (None when the cache plugin is off)."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return None
    return Path(cache.mkdir("mlflow-store")) / f"empty-mlflow-{version('mlflow')}.db"


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config):
    """One MLflow store for the session. Creating MLflow's database (its schema
    migrations) costs seconds, so a session starts from a copy of an empty one that an
    earlier session left in pytest's cache; the first session that used MLflow makes it."""
    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    template = _empty_mlflow_db(pytestconfig)
    if template is not None and template.is_file():
        shutil.copyfile(template, db)
    yield "sqlite:///" + str(db)
    if template is not None and not template.is_file() and "mlflow" in sys.modules:
        partial = template.with_name(f"{template.name}.{os.getpid()}.tmp")
        made = subprocess.run(
            [
                sys.executable,
                "-c",
                "import mlflow, sys; mlflow.MlflowClient(sys.argv[1]).search_experiments()",
                f"sqlite:///{partial}",
            ],
            capture_output=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
        )
        if made.returncode == 0:
            os.replace(partial, template)
        else:
            partial.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_uri: str):
    for key in list(os.environ):
        if key.startswith("MPTRAIN_") or key in {"MLFLOW_TRACKING_URI", "NO_COLOR"}:
            monkeypatch.delenv(key, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("MPTRAIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    yield work
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_mptrain", False):
            root.removeHandler(handler)
            handler.close()


@pytest.fixture
def cli():
    """Invoke the real CLI (with its error boundary) and return click's Result."""
    from marketpredictor_train.cli import app

    runner = CliRunner()

    def invoke(*args: str, **kwargs):
        return runner.invoke(app, [str(a) for a in args], **kwargs)

    return invoke
