"""A new SQLite MLflow store starts as a copy of an empty one kept in the cache folder:
MLflow's migrations of a new database cost seconds, and the weekly workflow starts a new
store every run (its cache folder is restored between runs)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import mlflow
import pytest

from marketpredictor_train.tracking.client import (
    _template_is_sound,
    _template_path,
    initialise_sqlite_store,
)


def _experiments(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT name, artifact_location FROM experiments").fetchall()


@pytest.mark.slow  # MLflow's migrations of a new database: seconds
def test_a_new_store_is_migrated_once_then_copied_and_a_bad_template_is_replaced(
    tmp_path: Path, monkeypatch
):
    templates = tmp_path / "cache" / "mlflow"
    template = _template_path(templates)
    template.parent.mkdir(parents=True)
    template.write_bytes(b"not a database")  # a damaged cache file is never copied

    first = tmp_path / "one" / "mlflow.db"
    initialise_sqlite_store(f"sqlite:///{first}", template_dir=templates)
    assert _template_is_sound(template)  # replaced by an empty copy of the new store
    with sqlite3.connect(template) as connection:
        assert connection.execute("SELECT COUNT(*) FROM experiments").fetchone() == (0,)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    second = elsewhere / "mlflow.db"
    template_bytes = template.read_bytes()
    initialise_sqlite_store(f"sqlite:///{second}", template_dir=templates)
    assert template.read_bytes() == template_bytes  # copied, not made again
    # MLflow made its default experiment for the folder the copy is used in (its
    # ./mlruns), not the one the template was made in
    [(name, location)] = _experiments(second)
    assert (name, location) == ("Default", str(elsewhere / "mlruns" / "0"))

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{second}")
    experiment = client.create_experiment("from-template")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "accuracy", 0.5)
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).data.metrics == {"accuracy": 0.5}
    assert _experiments(template) == []  # the template stays empty

    # a store in use is never replaced by the template, in a later process either
    from marketpredictor_train.tracking import client as tracking_client

    monkeypatch.setattr(tracking_client, "_initialised", set())
    initialise_sqlite_store(f"sqlite:///{second}", template_dir=templates)
    assert client.get_run(run.info.run_id).data.metrics == {"accuracy": 0.5}


def test_only_an_sqlite_file_with_mlflow_tables_and_no_experiment_is_a_template(tmp_path):
    assert not _template_is_sound(tmp_path / "missing.db")
    (tmp_path / "empty.db").write_bytes(b"")
    assert not _template_is_sound(tmp_path / "empty.db")
    sqlite3.connect(tmp_path / "plain.db").execute("CREATE TABLE t (x)").connection.close()
    assert not _template_is_sound(tmp_path / "plain.db")  # no MLflow tables
