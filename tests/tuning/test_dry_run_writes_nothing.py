"""`train --dry-run` writes nothing into the models folder and creates no MLflow store:
no models/, no optuna.db, no ./mlflow.db or ./mlruns; only logs/ and the --output-json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketpredictor_train.config import load_settings
from marketpredictor_train.tracking.client import would_create_store
from marketpredictor_train.tuning.run import DRY_RUN_STORAGE, _storage


@pytest.fixture
def no_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's default local store, as a user without MLFLOW_TRACKING_URI has it."""
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(None)
    yield
    mlflow.set_tracking_uri(None)


def test_a_dry_run_study_lives_in_memory_unless_a_storage_is_named(tmp_path):
    import optuna

    storage, shown = _storage(load_settings(dry_run=True, models_dir=tmp_path / "m"))
    assert isinstance(storage, optuna.storages.InMemoryStorage) and shown == DRY_RUN_STORAGE
    named = load_settings(dry_run=True, storage=f"sqlite:///{tmp_path / 'named.db'}")
    assert not isinstance(_storage(named)[0], optuna.storages.InMemoryStorage)
    assert not (tmp_path / "m").exists()


def test_the_default_mlflow_store_counts_as_missing_until_it_exists(no_tracking_uri):
    assert would_create_store()
    Path("mlflow.db").touch()
    assert not would_create_store()


@pytest.mark.slow  # a real dry run with 2 tuning trials (~15 s)
def test_train_optimize_dry_run_creates_no_store(cli, no_tracking_uri, monkeypatch):
    monkeypatch.setenv("MPTRAIN_CV_FOLDS", "2")
    result = cli(
        "train", "--source", "sample", "--tickers", "AAPL,MSFT", "--period", "2y",
        "--dry-run", "--optimize", "--trials", "2", "--output-json", "out.json",
    )  # fmt: skip
    assert result.exit_code in (0, 2), result.output
    doc = json.loads(Path("out.json").read_text())
    assert doc["status"] == "dry_run" and doc["mlflow_run_id"] is None
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["logs", "out.json"]
