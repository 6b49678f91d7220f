"""`mptrain train` end to end on the bundled sample data: real XGBoost fits, a real model
store, a real MLflow store, real log files — and the seed's exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from marketpredictor_train.store import ModelStore, read_model_file

# Two tickers and three years keep each run to a couple of seconds.
FAST = ("--source", "sample", "--tickers", "AAPL,MSFT", "--period", "3y")
# Thresholds every model clears, so promotion is decided by the champion rule alone.
# A gate every model clears (no thresholds, no skill gate): these tests are about the run.
LOW_BAR = (
    "--min-accuracy", "0", "--min-precision", "0", "--min-recall", "0", "--min-f1", "0",
    "--no-skill-gate",
)  # fmt: skip


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.slow
def test_default_thresholds_refuse_an_honest_daily_model(cli, tmp_path):
    """The seed's 60% bar is out of reach for an honest next-day model: exit 2, the seed's
    message, the version kept but nothing promoted."""
    out = tmp_path / "result.json"
    result = cli("train", *FAST, "--output-json", out)
    assert result.exit_code == 2, result.output
    assert "Model NOT promoted - accuracy below threshold" in result.output
    doc = _json(out)
    assert doc["status"] == "not_promoted" and doc["exit_code"] == 2
    assert doc["promoted"] is False
    assert 0.35 < doc["metrics"]["accuracy"] < 0.65  # honest: nowhere near 65-70%
    assert Path(doc["model_path"]).is_file()
    assert not Path("models/prod_model.bin").exists()
    assert ModelStore(Path("models")).history() == []


@pytest.mark.slow
def test_output_json_documents_the_run(cli, tmp_path):
    """--output-json carries every documented field, with consistent numbers."""
    out = tmp_path / "result.json"
    result = cli("train", *FAST, *LOW_BAR, "--output-json", out)
    assert result.exit_code == 0, result.output
    doc = _json(out)
    for field in (
        "status",
        "exit_code",
        "promoted",
        "version",
        "model_type",
        "metrics",
        "production_metrics",
        "thresholds",
        "n_train",
        "n_test",
        "data_window",
        "duration_s",
        "error",
    ):
        assert field in doc, field
    assert doc["status"] == "promoted" and doc["promoted"] is True and doc["error"] is None
    assert doc["model_type"] == "xgb"
    assert doc["production_metrics"] is None  # there was no production model before
    assert doc["thresholds"] == {"accuracy": 0, "precision": 0, "recall": 0, "f1": 0}
    assert doc["metrics"]["n_samples"] == doc["n_test"]
    window = doc["data_window"]
    assert window["train_end"] < window["backtest_start"]
    assert window["tickers"] == ["AAPL", "MSFT"]
    assert set(doc["metrics"]) >= {"accuracy", "precision", "recall", "f1"}


@pytest.mark.slow
def test_promotion_is_a_verified_self_describing_file(cli, tmp_path):
    """A promoted model is prod_model.bin, byte-identical to its version, whose manifest
    says what it is; the history records the promotion."""
    out = tmp_path / "r.json"
    assert cli("train", *FAST, *LOW_BAR, "--output-json", out).exit_code == 0
    version = _json(out)["version"]
    models = Path("models")
    assert (models / f"model_{version}.bin").read_bytes() == (
        models / "prod_model.bin"
    ).read_bytes()
    manifest = read_model_file(models / "prod_model.bin").manifest
    assert manifest["version"] == version
    assert manifest["model_type"] == "xgb"
    assert manifest["params"]["n_estimators"] == 100 and manifest["params"]["max_depth"] == 6
    assert manifest["label"]["horizon"] == 1
    assert manifest["feature_spec_hash"] and manifest["feature_columns"]
    history = ModelStore(models).history()
    assert [(r.action, r.to_version) for r in history] == [("promote", version)]


@pytest.mark.slow
def test_challenger_is_compared_with_production_on_the_same_rows(cli, tmp_path):
    """The second run scores the production model on its backtest: the same seed and data
    give the same model, so production's metrics equal the first run's and the challenger
    (not worse) is promoted."""
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    assert cli("train", *FAST, *LOW_BAR, "--output-json", first).exit_code == 0
    assert cli("train", *FAST, *LOW_BAR, "--output-json", second).exit_code == 0
    one, two = _json(first), _json(second)
    assert two["production_version"] == one["version"]
    for name in ("accuracy", "precision", "recall", "f1"):
        assert two["production_metrics"][name] == pytest.approx(one["metrics"][name])
    assert two["promoted"] is True
    assert ModelStore(Path("models")).production().version == two["version"]


@pytest.mark.slow
def test_force_promotes_below_thresholds_and_history_says_forced(cli, tmp_path):
    out = tmp_path / "r.json"
    result = cli("train", *FAST, "--min-accuracy", "0.99", "--force", "--output-json", out)
    assert result.exit_code == 0, result.output
    doc = _json(out)
    assert doc["promoted"] is True and doc["forced"] is True
    assert doc["passed_validation"] is False
    (record,) = ModelStore(Path("models")).history()
    assert record.forced is True


@pytest.mark.slow
def test_dry_run_never_promotes_nor_writes_models(cli, tmp_path):
    out = tmp_path / "r.json"
    result = cli("train", *FAST, *LOW_BAR, "--dry-run", "--output-json", out)
    assert result.exit_code == 0, result.output
    doc = _json(out)
    assert doc["status"] == "dry_run" and doc["promoted"] is False and doc["version"] is None
    assert not any(Path("models").glob("*.bin")) if Path("models").exists() else True


@pytest.mark.slow
def test_dry_run_reports_a_failing_gate_with_exit_2(cli):
    result = cli("train", *FAST, "--dry-run")
    assert result.exit_code == 2, result.output
    assert "accuracy below threshold" in result.output


@pytest.mark.slow
def test_json_log_lines_have_exactly_the_seed_fields(cli):
    assert cli("train", *FAST, *LOW_BAR).exit_code == 0
    lines = [json.loads(line) for line in Path("logs/training.log").read_text().splitlines()]
    assert lines
    for line in lines:
        assert set(line) - {"metrics"} == {"timestamp", "level", "message", "module", "function"}
    complete = [line for line in lines if line["message"].startswith("Training complete")]
    assert complete and set(complete[0]["metrics"]) == {"accuracy", "precision", "recall", "f1"}
    assert complete[0]["module"] == "train" and complete[0]["function"] == "train"


@pytest.mark.slow
def test_mlflow_run_has_the_seed_metrics_model_and_decision(cli, tmp_path, monkeypatch):
    """With no MLFLOW_TRACKING_URI the default local store in the working directory is
    used, so `mlflow ui` started there shows the run."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    out = tmp_path / "r.json"
    assert cli("train", *FAST, *LOW_BAR, "--output-json", out).exit_code == 0
    doc = _json(out)
    import mlflow

    mlflow.set_tracking_uri(None)  # back to the default, as a fresh `mlflow ui` would use
    try:
        client = mlflow.MlflowClient()
        run = client.get_run(doc["mlflow_run_id"])
        assert (
            Path(client.tracking_uri.removeprefix("sqlite:///")).resolve()
            == (Path.cwd() / "mlflow.db").resolve()
        )
    finally:
        mlflow.set_tracking_uri(None)
    for key in ("accuracy", "precision", "recall", "f1", "n_samples", "n_features"):
        assert key in run.data.metrics
    assert run.data.metrics["accuracy"] == pytest.approx(doc["metrics"]["accuracy"])
    assert run.data.tags["mptrain.promoted"] == "true"
    assert run.data.tags["mptrain.version"] == doc["version"]
    # The saved version is an MLflow model of the run, registered, and production's alias.
    (output,) = run.outputs.model_outputs
    assert doc["registry"]["champion_version"] == doc["registry"]["model_version"]
    mv = client.get_model_version_by_alias("marketpredictor", "champion")
    assert (mv.source, mv.tags["mptrain.version"]) == (f"models:/{output.model_id}", doc["version"])


@pytest.mark.slow
def test_manual_copy_rollback_is_identified(cli, tmp_path):
    """The seed's `cp models/model_X.bin models/prod_model.bin` gives a production model
    that train recognises and compares against."""
    first, second, third = (tmp_path / f"{i}.json" for i in (1, 2, 3))
    assert cli("train", *FAST, *LOW_BAR, "--output-json", first).exit_code == 0
    assert cli("train", *FAST, "--horizon", "2", "--force", "--output-json", second).exit_code == 0
    assert ModelStore(Path("models")).production().version == _json(second)["version"]
    v1 = _json(first)["version"]
    shutil.copyfile(f"models/model_{v1}.bin", "models/prod_model.bin")
    assert ModelStore(Path("models")).production().version == v1
    assert cli("train", *FAST, *LOW_BAR, "--output-json", third).exit_code == 0
    assert _json(third)["production_version"] == v1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--bogus",), "No such option"),
        (("--period", "7y"), "--period"),
        (("--min-accuracy", "1.5"), "--min-accuracy"),
        (("--min-accuracy", "high"), "--min-accuracy"),
        (("--trials", "0"), "--trials"),
        (("--model-type", "catboost", "--source", "sample"), "Available: "),
        (("--source", "no/such/file.csv"), "no/such/file.csv"),
        (("--force", "--dry-run"), "contradict"),
    ],
)
def test_configuration_errors_exit_3_with_one_clear_line(cli, tmp_path, args, needle):
    out = tmp_path / "r.json"
    result = cli("train", *args, "--output-json", out)
    assert result.exit_code == 3, result.output
    assert needle in result.output
    assert "Traceback" not in result.output
    if out.exists():  # usage errors stop before the command runs; later ones write JSON
        assert _json(out)["exit_code"] == 3


def test_a_missing_source_file_is_refused_before_the_mlflow_run_opens(cli, tmp_path, monkeypatch):
    """The path is checked before tracking starts: no MLflow database is created (its
    first creation costs seconds) and no failed run is recorded for a typo."""
    store = tmp_path / "fresh-mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    result = cli("train", "--source", "no/such/file.csv")
    assert result.exit_code == 3, result.output
    assert "Data source not found: no/such/file.csv" in result.output
    assert not store.exists()


def test_unknown_model_type_lists_available_types(cli):
    result = cli("train", "--model-type", "catboost", "--source", "sample")
    assert result.exit_code == 3
    assert "xgb (marketpredictor-train)" in result.output


def test_yahoo_without_network_fails_with_the_seed_message(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MPTRAIN_DOWNLOAD_RETRIES", "0")
    out = tmp_path / "r.json"
    result = cli(
        "train", "--source", "yahoo", "--tickers", "AAPL", "--offline", "--output-json", out
    )
    assert result.exit_code == 1, result.output
    assert "Dataset is empty after build_dataset" in result.output
    doc = _json(out)
    assert doc["status"] == "failed" and doc["exit_code"] == 1
    assert "Dataset is empty" in doc["error"]["message"]


def test_too_little_data_fails_with_insufficient_data(cli, tmp_path):
    """A file holding a few months cannot give a training set and a 6-month backtest."""
    from marketpredictor_train.config import load_settings
    from marketpredictor_train.data import load_ohlcv

    frame = load_ohlcv(load_settings(source="sample", tickers="IBM")).frame.tail(300)
    path = tmp_path / "short.csv"
    frame.drop("adj_close").write_csv(path)
    out = tmp_path / "r.json"
    result = cli("train", "--source", path, "--output-json", out)
    assert result.exit_code == 1, result.output
    assert "Training failed - insufficient data" in result.output
    assert _json(out)["error"]["type"] in {"TrainingError", "DataError"}


@pytest.mark.slow
def test_a_champion_promoted_by_a_concurrent_run_is_not_overwritten(cli, tmp_path, monkeypatch):
    """Between scoring production and promoting, another run promotes its model: this run
    must not replace a champion it never compared itself with (exit 2, nothing lost)."""
    from marketpredictor_train.store import ModelStore as Store

    first = tmp_path / "1.json"
    assert cli("train", *FAST, *LOW_BAR, "--output-json", first).exit_code == 0
    rival = Store(Path("models")).save({"model_type": "xgb"}, b"rival")
    real_save = Store.save

    def save_then_rival_promotes(self, manifest, payload):
        stored = real_save(self, manifest, payload)
        Store(self.models_dir).promote(rival.version, reason="concurrent run")
        return stored

    monkeypatch.setattr(Store, "save", save_then_rival_promotes)
    second = tmp_path / "2.json"
    result = cli("train", *FAST, *LOW_BAR, "--output-json", second)
    assert result.exit_code == 2, result.output
    assert "production model changed during this run" in result.output
    assert _json(second)["promoted"] is False
    assert Store(Path("models")).production().version == rival.version


@pytest.mark.slow
def test_feature_spec_from_the_config_file_is_used_and_saved(cli, tmp_path):
    """`[[features]]` in mptrain.toml replaces the default set; the model file records the
    spec and its hash, and only that spec's columns are fed to the model."""
    Path("mptrain.toml").write_text(
        '[[features]]\nkind = "rsi"\nlength = 9\n\n[[features]]\nkind = "roc"\nlength = 3\n'
    )
    out = tmp_path / "r.json"
    assert cli("train", *FAST, *LOW_BAR, "--output-json", out).exit_code == 0
    manifest = read_model_file(Path(_json(out)["model_path"])).manifest
    assert manifest["feature_spec"]["indicators"] == [
        {"kind": "rsi", "length": 9},
        {"kind": "roc", "length": 3},
    ]
    assert manifest["feature_columns"] == ["rsi_9", "roc_3"]
    assert _json(out)["n_features"] == 2


def test_a_bad_feature_spec_is_a_configuration_error(cli):
    Path("mptrain.toml").write_text('[[features]]\nkind = "rsi"\nlenght = 9\n')
    result = cli("train", *FAST)
    assert result.exit_code == 3, result.output
    assert "lenght" in result.output
