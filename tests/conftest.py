"""Fixtures shared by the whole suite: every test runs in its own working directory with a
clean environment, so models/, logs/, the MLflow store and the data cache never leak."""

from __future__ import annotations

import logging
import os
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


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow store for the session: creating MLflow's database costs seconds."""
    return "sqlite:///" + str(tmp_path_factory.mktemp("mlflow") / "mlflow.db")


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
