"""The MLflow run of a whole `mptrain train` and the Model Registry that follows the model
store: real trains on the bundled sample data through the CLI, a real MLflow store (the
session's sqlite store; each test has a registered model and experiment of its own), and
real pyfunc loading and `mlflow models serve`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import polars as pl
import pytest

from marketpredictor_train import load_model
from marketpredictor_train.store import ModelStore

if TYPE_CHECKING:
    import mlflow

TICKERS = ("AAPL", "MSFT")
FAST = ("--source", "sample", "--tickers", ",".join(TICKERS), "--period", "3y")
DATA_SETTINGS = {"source": "sample", "tickers": list(TICKERS), "period": "3y"}

# Every test here trains through the CLI and talks to a real MLflow store.
pytestmark = pytest.mark.slow


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A registered model and an experiment of this test's own in the session store."""
    suffix = uuid.uuid4().hex[:10]
    chosen = {"model": f"mp-{suffix}", "experiment": f"mptrain-{suffix}"}
    monkeypatch.setenv("MPTRAIN_REGISTERED_MODEL_NAME", chosen["model"])
    monkeypatch.setenv("MPTRAIN_EXPERIMENT_NAME", chosen["experiment"])
    return chosen


@pytest.fixture
def registry_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry server that refuses connections (tracking itself still works), with
    MLflow told not to retry."""
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "http://127.0.0.1:9")  # the discard port
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")


@pytest.fixture
def client() -> mlflow.MlflowClient:
    import mlflow

    assert mlflow.get_tracking_uri().startswith("sqlite:///")  # the session store
    return mlflow.MlflowClient()


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _train(cli, tmp_path: Path, *args: str, code: int = 0) -> dict:
    out = tmp_path / f"train-{uuid.uuid4().hex[:6]}.json"
    result = cli("train", *FAST, *args, "--output-json", out)
    assert result.exit_code == code, result.output
    return _json(out)


def _champion(client, name: str) -> tuple[str, str]:
    """(MLflow model version, its mptrain version) the alias `champion` names."""
    mv = client.get_model_version_by_alias(name, "champion")
    return str(mv.version), mv.tags["mptrain.version"]


def _production() -> str:
    production = ModelStore(Path("models")).production()
    assert production is not None
    return production.version


def _sample_frame() -> pl.DataFrame:
    from marketpredictor_train.config import load_settings
    from marketpredictor_train.data import load_ohlcv

    return load_ohlcv(load_settings(**DATA_SETTINGS)).frame


# ----------------------------------------------------------------- the training run


def test_the_run_spans_the_train_and_logs_its_settings(cli, tmp_path, names, client):
    doc = _train(cli, tmp_path, "--force", "--seed", "7")
    run = client.get_run(doc["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == f"train-{doc['version']}"
    worked = sum(doc["timings"][step] for step in ("data", "features", "fit", "validate", "store"))
    duration = (run.info.end_time - run.info.start_time) / 1000
    assert duration >= worked  # opened before the data was loaded, closed after the store step
    params = run.data.params
    assert params["tickers"] == "AAPL,MSFT" and params["seed"] == "7"
    assert params["horizon"] == "1" and params["period"] == "3y"
    assert (params["min_accuracy"], params["min_f1"]) == ("0.6", "0.52")
    assert run.data.tags["mptrain.version"] == doc["version"]


def test_a_dry_run_is_named_apart_and_registers_nothing(cli, tmp_path, names, client):
    doc = _train(cli, tmp_path, "--dry-run", code=2)
    run = client.get_run(doc["mlflow_run_id"])
    assert run.info.run_name == f"train-dry-{doc['run_id']}"
    assert run.outputs is None or not run.outputs.model_outputs
    assert doc["registry"] is None
    assert client.search_registered_models(f"name = '{names['model']}'") == []


def test_a_train_that_fails_leaves_a_failed_run(cli, tmp_path, names, client):
    """A train stopped by an error (here too little data) is a FAILED run with the error."""
    out = tmp_path / "r.json"
    result = cli("train", "--source", "sample", "--tickers", "AAPL", "--period", "1y",
                 "--horizon", "60", "--output-json", out)  # fmt: skip
    assert result.exit_code == 1, result.output
    experiment = client.get_experiment_by_name(names["experiment"])
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["mptrain.status"] == "failed"
    assert "insufficient data" in run.data.tags["mptrain.error"]
    assert run.info.run_name.startswith("train-")


# ----------------------------------------------------------------- the registry


def test_the_champion_alias_follows_every_change_of_production(cli, tmp_path, names, client):
    """After a train that is not promoted, a promotion, a second promotion, a rollback, a
    rollback back and the seed's manual cp (noticed by the next command), the alias names
    the model version whose mptrain version is production; each version is registered
    once, from its train run, and the history records the model version promoted."""
    import mlflow

    name = names["model"]
    kept = _train(cli, tmp_path, code=2)  # default thresholds: saved, registered, no alias
    assert kept["registry"]["champion_version"] is None
    assert kept["registry"]["model_version"] == "1"
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias(name, "champion")

    first = _train(cli, tmp_path, "--force")
    assert _champion(client, name) == ("2", first["version"]) == ("2", _production())
    assert first["registry"] == {
        "registered_model": name,
        "alias": "champion",
        "uri": f"models:/{name}@champion",
        "champion_version": "2",
        "production": first["version"],
        "moved": True,
        "model_version": "2",
    }
    second = _train(cli, tmp_path, "--force", "--horizon", "2")
    assert _champion(client, name) == ("3", second["version"]) == ("3", _production())

    back = cli("rollback", "--json")
    assert back.exit_code == 0, back.output
    assert json.loads(back.stdout)["registry"]["champion_version"] == "2"
    assert _champion(client, name) == ("2", first["version"]) == ("2", _production())
    again = cli("rollback")
    assert again.exit_code == 0, again.output
    assert f"models:/{name}@champion is {name} version 3" in " ".join(again.output.split())
    assert _champion(client, name) == ("3", second["version"])

    shutil.copyfile(f"models/model_{kept['version']}.bin", "models/prod_model.bin")
    assert _champion(client, name) == ("3", second["version"])  # not noticed yet
    out = tmp_path / "validate.json"
    validate = cli("validate", *FAST, "--output-json", out)
    assert validate.exit_code in (0, 2), validate.output
    assert _json(out)["registry"]["moved"] is True
    assert _champion(client, name) == ("1", kept["version"]) == ("1", _production())

    history = ModelStore(Path("models")).history()
    assert [(r.to_version, r.mlflow_model_version) for r in history] == [
        (first["version"], "2"),
        (second["version"], "3"),
        (first["version"], "2"),
        (second["version"], "3"),
    ]
    assert {r.registered_model for r in history} == {name}
    versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3]  # none registered twice
    for doc in (kept, first, second):
        (mv,) = [v for v in versions if v.tags["mptrain.version"] == doc["version"]]
        assert mv.run_id == doc["mlflow_run_id"]  # logged in its own train run


def test_model_version_tags_describe_the_model(cli, tmp_path, names, client):
    doc = _train(cli, tmp_path, "--force", "--horizon", "3")
    mv = client.get_model_version(names["model"], doc["registry"]["model_version"])
    tags = mv.tags
    assert tags["mptrain.version"] == doc["version"]
    assert tags["mptrain.horizon"] == "3"
    manifest = load_model(doc["model_path"]).manifest
    assert tags["mptrain.feature_spec_hash"] == manifest["feature_spec_hash"]
    assert tags["mptrain.package_version"] == manifest["library_versions"]["marketpredictor-train"]
    assert tags["mptrain.decision"] == doc["reason"] and tags["mptrain.status"] == "promoted"
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier"):
        assert float(tags[f"mptrain.metric.{metric}"]) == doc["metrics"][metric]
    assert tags["mptrain.run_id"] == doc["run_id"]


def test_a_registry_outage_during_promotion_is_a_warning_repaired_later(
    cli, tmp_path, names, client, monkeypatch, registry_down
):
    """With the registry unreachable the train still promotes (the store is the truth),
    warns, and records no model version; the next command that reaches the registry
    registers production and points the alias at it."""
    doc = _train(cli, tmp_path, "--force")
    assert doc["promoted"] is True and doc["version"] == _production()
    (warning,) = [w for w in doc["warnings"] if w.startswith("MLflow model registry")]
    assert "follows production at the next command" in warning
    assert doc["registry"] is None and doc["mlflow_run_id"] is not None
    assert ModelStore(Path("models")).history()[-1].mlflow_model_version is None

    for key in ("MLFLOW_REGISTRY_URI", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        monkeypatch.delenv(key)
    out = tmp_path / "validate.json"
    result = cli("validate", *FAST, "--output-json", out)
    assert result.exit_code in (0, 2), result.output
    repaired = _json(out)["registry"]
    assert repaired["moved"] is True and repaired["production"] == doc["version"]
    assert _champion(client, names["model"]) == (repaired["champion_version"], doc["version"])


def test_an_unreachable_registry_does_not_stop_a_rollback(
    cli, tmp_path, names, monkeypatch, request
):
    first = _train(cli, tmp_path, "--force")
    _train(cli, tmp_path, "--force", "--horizon", "2")
    request.getfixturevalue("registry_down")
    result = cli("rollback", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["version"] == first["version"] == _production()
    assert doc["registry"] is None
    assert any(w.startswith("MLflow model registry") for w in doc["warnings"])


# ----------------------------------------------------------------- the MLflow model


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str) -> dict:
    """A store whose production model is registered, with its own registered model."""
    from marketpredictor_train import api
    from marketpredictor_train.config import load_settings

    tmp = tmp_path_factory.mktemp("registered")
    name = f"mp-{uuid.uuid4().hex[:10]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
        patch.chdir(tmp)
        result = api.train(
            load_settings(
                **DATA_SETTINGS,
                force=True,
                registered_model_name=name,
                experiment_name=f"mptrain-{name}",
                models_dir=tmp / "models",
                logs_dir=tmp / "logs",
                quiet=True,
            )
        )
    assert result.promoted and result.registry is not None
    return {"tmp": tmp, "name": name, "uri": f"models:/{name}@champion", "result": result}


def test_the_mlflow_model_is_code_and_the_bin_no_pickle(registered):
    """The logged model is "models from code": our model code and the version's .bin, with
    marketpredictor-train as its requirement; no pickle anywhere in it."""
    import mlflow

    local = Path(mlflow.artifacts.download_artifacts(registered["uri"]))
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    version = registered["result"].version
    assert f"artifacts/model_{version}.bin" in files
    assert "pyfunc_model.py" in files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".cloudpickle"))]
    mlmodel = (local / "MLmodel").read_text()
    assert "model_code_path" in mlmodel and "python_model.pkl" not in mlmodel
    requirements = (local / "requirements.txt").read_text().split()
    assert any(r.startswith("marketpredictor-train==") for r in requirements)
    assert (local / f"artifacts/model_{version}.bin").read_bytes() == Path(
        registered["result"].model_path
    ).read_bytes()


def test_pyfunc_load_gives_the_librarys_probabilities(registered):
    import mlflow

    frame = _sample_frame()
    expected = load_model(registered["result"].model_path).predict(frame)
    served = mlflow.pyfunc.load_model(registered["uri"]).predict(frame.to_pandas())
    assert isinstance(served, pd.DataFrame)
    assert list(served.columns) == ["ticker", "date", "probability_up", "prediction"]
    assert len(served) == expected.height
    assert np.array_equal(
        served["probability_up"].to_numpy(), expected["probability_up"].to_numpy()
    )
    assert served["prediction"].tolist() == expected["prediction"].to_list()
    assert served["date"].tolist() == [d.isoformat() for d in expected["date"].to_list()]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_answers_with_the_same_probabilities(registered, mlflow_uri):
    """`mlflow models serve -m models:/<name>@champion --env-manager local` on loopback:
    /invocations answers the library's probabilities for the same bars."""
    port = _free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_uri,
        # the server's own entry points (uvicorn) live beside this interpreter
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            registered["uri"],
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],  # fmt: skip
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stdout.read().decode(errors="replace")[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "mlflow models serve did not come up"
                time.sleep(1)
        frame = _sample_frame().tail(400)
        body = frame.with_columns(pl.col("date").cast(pl.String)).to_pandas()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"dataframe_split": body.to_dict(orient="split")}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            answered = json.loads(response.read())["predictions"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    expected = load_model(registered["result"].model_path).predict(frame)
    assert [(r["ticker"], r["date"]) for r in answered] == [
        (t, d.isoformat()) for t, d in expected.select("ticker", "date").iter_rows()
    ]
    assert [r["probability_up"] for r in answered] == expected["probability_up"].to_list()
    assert [r["prediction"] for r in answered] == expected["prediction"].to_list()
