"""Fixtures of the tuning tests: a small real dataset (two sample tickers, two years),
settings that keep trials cheap, a PostgreSQL server for the farm tests, and a way to run
`mptrain` as a real separate process."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.tuning.helpers import free_port

# Read at import: the suite's autouse fixture clears every MPTRAIN_* variable per test.
POSTGRES_URL_FROM_ENV = os.environ.get("MPTRAIN_TEST_POSTGRES_URL")
POSTGRES_REQUIRED = os.environ.get("MPTRAIN_TEST_REQUIRE_POSTGRES") == "1"

REPO_ROOT = Path(__file__).resolve().parents[2]

# Cheap but real: two tickers, two years, two folds -> about 660 training rows.
SMALL_DATA = {"source": "sample", "tickers": "AAPL,MSFT", "period": "2y", "cv_folds": 2}
SMALL_FLAGS = ["--source", "sample", "--tickers", "AAPL,MSFT", "--period", "2y", "--cv-folds", "2"]


@pytest.fixture
def small_settings(tmp_path: Path):
    """Settings factory: the small data, no MLflow, models and study under tmp_path."""
    from marketpredictor_train.config import load_settings

    def make(**overrides: Any):
        values: dict[str, Any] = {
            **SMALL_DATA,
            "mlflow": False,
            "models_dir": tmp_path / "models",
            "trials": 3,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture(autouse=True)
def cheap_xgb_search_space(monkeypatch: pytest.MonkeyPatch):
    """In-process tests tune xgb over small forests: the wiring is what they check, and
    the seed's 300-tree, depth-10 corner would only make them slow."""
    from marketpredictor_train.models.xgb import XGBModelType

    def search_space(cls, trial):
        return {
            "n_estimators": trial.suggest_int("n_estimators", 30, 100),
            "max_depth": trial.suggest_int("max_depth", 2, 6),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        }

    monkeypatch.setattr(XGBModelType, "search_space", classmethod(search_space))


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory):
    from marketpredictor_train.config import load_settings
    from marketpredictor_train.pipelines.common import prepare_data
    from marketpredictor_train.progress import StepTimer

    settings = load_settings(**SMALL_DATA, cache_dir=tmp_path_factory.mktemp("cache"), mlflow=False)
    return prepare_data(settings, StepTimer(), None)[1]


# --- PostgreSQL -------------------------------------------------------------------------


def _postgres_unavailable(reason: str):
    if POSTGRES_REQUIRED:
        pytest.fail(f"PostgreSQL is required here (MPTRAIN_TEST_REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(reason)


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _reachable(url: str) -> str | None:
    import psycopg2

    try:
        psycopg2.connect(url, connect_timeout=5).close()
    except psycopg2.Error as exc:
        return str(exc).strip()
    return None


class _OwnCluster:
    """A throw-away PostgreSQL cluster on a loopback port (initdb runs as `postgres`
    when the tests run as root, as PostgreSQL refuses root)."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin = bin_dir
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> str:
        if self.as_pg:
            shutil.chown(self.root, user="postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        )
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c max_connections=100"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            opts,
            "start",
        )
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(
            [
                *self.as_pg,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )

    def _run(self, *cmd: str) -> None:
        out = subprocess.run([*self.as_pg, *cmd], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {out.stdout}{out.stderr}")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory):
    """A PostgreSQL server URL: MPTRAIN_TEST_POSTGRES_URL (as .ci/run sets), else a
    private cluster when the binaries are installed, else skip (fail when required)."""
    if POSTGRES_URL_FROM_ENV:
        problem = _reachable(POSTGRES_URL_FROM_ENV)
        if problem:
            _postgres_unavailable(f"cannot connect to MPTRAIN_TEST_POSTGRES_URL: {problem}")
        yield POSTGRES_URL_FROM_ENV
        return
    bin_dir = _pg_bin()
    if bin_dir is None:
        _postgres_unavailable("no MPTRAIN_TEST_POSTGRES_URL and no PostgreSQL binaries")
    root = Path(f"/tmp/mptrain-pg-{uuid.uuid4().hex[:8]}")  # short: socket paths are limited
    root.mkdir(mode=0o755)
    cluster = _OwnCluster(bin_dir, root)
    try:
        url = cluster.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(root, ignore_errors=True)
        _postgres_unavailable(f"could not start a PostgreSQL cluster: {exc}")
    try:
        yield url
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: str):
    """A fresh database on the server for this test session, dropped afterwards."""
    import psycopg2
    from sqlalchemy.engine import make_url

    name = f"mptrain_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(postgres_server, connect_timeout=10)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
