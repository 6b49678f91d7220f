"""Fixtures of the validation tests: the synthetic markets written as CSV/Parquet files
for `--source <path>`, and train runs shared by several tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.validation.markets import DAYS, SMALL, market, write


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("markets")


@pytest.fixture(scope="session")
def random_walk(data_dir: Path) -> Path:
    """No signal at all: an honest pipeline scores about 50% here."""
    return write(market(seed=11), data_dir / "random_walk.csv")


@pytest.fixture(scope="session")
def signal_market(data_dir: Path) -> Path:
    """A planted signal throughout: tomorrow follows today's volume 80% of the time."""
    return write(market(seed=23, signal=0.3), data_dir / "signal.parquet")


@pytest.fixture(scope="session")
def late_signal_market(data_dir: Path) -> Path:
    """Noise until the last ~8 months, then the planted signal: a model trained here
    learns nothing, while one trained on `signal_market` does well on its backtest."""
    return write(market(seed=23, signal=0.3, signal_from=DAYS - 170), data_dir / "late.csv")


@pytest.fixture
def settings_for():
    """Settings for a library-level run on a synthetic market (no MLflow: seconds)."""
    from marketpredictor_train.config import load_settings

    def make(source: Path, **overrides):
        return load_settings(source=str(source), mlflow=False, **overrides)

    return make


@pytest.fixture(scope="session")
def small_signal_market(data_dir: Path) -> Path:
    """A smaller market with the planted signal, for the promotion mechanics."""
    return write(market(seed=5, signal=0.3, **SMALL), data_dir / "small_signal.csv")


@pytest.fixture(scope="session")
def small_late_signal_market(data_dir: Path) -> Path:
    """The same market, but noise before its last ~8 months: a model trained on it learns
    nothing, so on the backtest it is worse than one trained on `small_signal_market`."""
    frame = market(seed=5, signal=0.3, signal_from=SMALL["days"] - 170, **SMALL)
    return write(frame, data_dir / "small_late.csv")


def _session_settings(tmp: Path, source: Path, **overrides):
    from marketpredictor_train.config import load_settings

    return load_settings(
        source=str(source),
        mlflow=False,
        models_dir=tmp / "models",
        logs_dir=tmp / "logs",
        cache_dir=tmp / "cache",
        quiet=True,
        **overrides,
    )


@pytest.fixture(scope="session")
def random_walk_run(tmp_path_factory: pytest.TempPathFactory, random_walk: Path):
    """One `train` on the random walk with the seed's default thresholds."""
    from marketpredictor_train import api

    tmp = tmp_path_factory.mktemp("rw_run")
    return tmp, api.train(_session_settings(tmp, random_walk))


@pytest.fixture(scope="session")
def champion_run(tmp_path_factory: pytest.TempPathFactory, small_signal_market: Path):
    """A store whose production model learned the planted signal (default thresholds)."""
    from marketpredictor_train import api

    tmp = tmp_path_factory.mktemp("champion_run")
    return tmp, api.train(_session_settings(tmp, small_signal_market))


@pytest.fixture
def champion_store(champion_run, tmp_path: Path) -> Path:
    """A private copy of the champion's model store in this test's working directory."""
    import shutil

    tmp, _ = champion_run
    target = Path.cwd() / "models"
    shutil.copytree(tmp / "models", target)
    return target
