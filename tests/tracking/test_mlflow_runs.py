"""MLflow tracking (tracking.mlflow_runs), called directly against a real local MLflow
store: the session's sqlite store that tests/conftest.py puts in MLFLOW_TRACKING_URI.
Each test logs into an experiment of its own and reads the run back with MlflowClient.
(The registry and the run of a whole `mptrain train` are in test_registry.py.)"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import mlflow
import pytest
from structlog.testing import capture_logs

from marketpredictor_train.config import load_settings
from marketpredictor_train.tracking import log_validation_run, training_run

SEED = {"accuracy": 0.61, "precision": 0.6, "recall": 0.55, "f1": 0.574, "n_samples": 1200}
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture
def experiment() -> str:
    return f"mptrain-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client() -> mlflow.MlflowClient:
    assert mlflow.get_tracking_uri().startswith("sqlite:///")  # the session store
    return mlflow.MlflowClient()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "files"
    (folder / "reports").mkdir(parents=True)
    out = {
        "md": folder / "reports" / "report.md",
        "json": folder / "reports" / "report.json",
    }
    out["md"].write_text("# Validation report\n", encoding="utf-8")
    out["json"].write_text('{"metrics": {}}\n', encoding="utf-8")
    return out


def train_run(settings, run_id: str = "20240601-120000-abcd", **overrides):
    """A training run opened and finished at once (no store: the registry is left alone);
    returns (MLflow run id, first warning)."""
    kwargs = {
        "params": {"n_estimators": 100, "learning_rate": 0.1},
        "metrics": SEED,
        "n_features": 23,
        "tickers": ("AAPL", "MSFT"),
        "status": "promoted",
        "promoted": True,
        "version": "v0003",
        "reason": "Model promoted - every metric meets its threshold",
    }
    kwargs.update(overrides)
    with training_run(settings, run_id) as run:
        outcome = run.finish(None, **kwargs)
    return outcome.mlflow_run_id, (outcome.warnings[0] if outcome.warnings else None)


def validation_run(settings, **overrides):
    kwargs = {
        "run_id": "20240602-080000-ef01",
        "target": "production",
        "version": "v0003",
        "model_type": "xgb",
        "metrics": SEED,
        "status": "passed",
        "reason": "Validation passed - every metric meets its threshold",
    }
    kwargs.update(overrides)
    return log_validation_run(settings, **kwargs)


def artifact_names(client: mlflow.MlflowClient, run_id: str, folder: str) -> list[str]:
    return sorted(Path(a.path).name for a in client.list_artifacts(run_id, folder))


# ----------------------------------------------------------------- training runs


def test_training_run_is_logged_in_the_configured_experiment(client, experiment):
    """A finished run under settings.experiment_name, named after the version; the
    returned id is that run's and no run is left active."""
    settings = load_settings(experiment_name=experiment)
    run_id, warning = train_run(settings)
    assert warning is None and run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "train-v0003"
    assert run.info.experiment_id == client.get_experiment_by_name(experiment).experiment_id
    assert mlflow.active_run() is None


def test_training_run_params_include_the_settings_and_stringify_the_rest(client, experiment):
    """The run's own parameters (data, label, model type, seed, the gate's thresholds) are
    logged when it starts; the model's params and the tickers trained on at the end, as
    strings; a model param named like a run param does not replace it."""
    settings = load_settings(
        experiment_name=experiment,
        period="2y",
        horizon=3,
        source="data.csv",
        model_type="rf",
        seed=7,
        min_accuracy=0.58,
    )
    params = {
        "n_estimators": 100,
        "learning_rate": 0.05,
        "max_features": None,
        "bootstrap": True,
        "layers": [64, 32],
        "monotone": {"rsi_14": 1},
        "model_type": "overridden",
    }
    run_id, warning = train_run(settings, params=params, tickers=("IBM", "MSFT"))
    assert warning is None
    assert client.get_run(run_id).data.params == {
        "n_estimators": "100",
        "learning_rate": "0.05",
        "max_features": "None",
        "bootstrap": "True",
        "layers": "[64, 32]",
        "monotone": "{'rsi_14': 1}",
        "model_type": "rf",
        "period": "2y",
        "horizon": "3",
        "source": "data.csv",
        "tickers": "IBM,MSFT",
        "seed": "7",
        "dead_band": "0.0",
        "backtest_months": "6",
        "embargo_days": "0",
        "primary_metric": "accuracy",
        "cost_per_trade": "0.0005",
        "min_accuracy": "0.58",
        "min_precision": "0.55",
        "min_recall": "0.5",
        "min_f1": "0.52",
        "optimize": "False",
        "refit": "False",
        "skip_validation": "False",
    }


def test_training_run_metrics_are_the_seed_four_n_samples_n_features_and_extras(client, experiment):
    """Only the seed's metrics and n_samples are taken from ``metrics`` (other keys such
    as roc_auc or confusion counts are not); n_features and extra_metrics are added."""
    settings = load_settings(experiment_name=experiment)
    metrics = {**SEED, "roc_auc": 0.63, "tp": 410, "log_loss": 0.69}
    extra = {"roc_auc": 0.63, "accuracy_ci_low": 0.58, "train_seconds": 12.5}
    run_id, warning = train_run(settings, metrics=metrics, n_features=23, extra_metrics=extra)
    assert warning is None
    assert client.get_run(run_id).data.metrics == pytest.approx(
        {**SEED, "n_features": 23.0, **extra}
    )


def test_a_run_without_validation_logs_only_n_features(client, experiment):
    """--skip-validation has no metrics: the run is still logged, with n_features."""
    settings = load_settings(experiment_name=experiment, skip_validation=True, force=True)
    run_id, warning = train_run(
        settings, metrics={}, status="promoted", reason="Promoted without validation (--force)"
    )
    assert warning is None
    run = client.get_run(run_id)
    assert run.data.metrics == {"n_features": 23.0}
    assert run.data.tags["mptrain.forced"] == "true"


def test_training_run_tags_carry_the_decision(client, experiment):
    settings = load_settings(experiment_name=experiment, dry_run=True)
    run_id, _ = train_run(
        settings,
        run_id="abcd12345678",
        status="dry_run",
        promoted=False,
        version=None,
        reason="Dry run - model passed but was not promoted",
    )
    run = client.get_run(run_id)
    tags = {k: v for k, v in run.data.tags.items() if k.startswith("mptrain.")}
    assert tags == {
        "mptrain.command": "train",
        "mptrain.run_id": "abcd12345678",
        "mptrain.status": "dry_run",
        "mptrain.promoted": "false",
        "mptrain.version": "",
        "mptrain.decision": "Dry run - model passed but was not promoted",
        "mptrain.dry_run": "true",
        "mptrain.forced": "false",
    }
    # a dry run saves no version: it is named apart from the saved ones, by its run id
    assert run.info.run_name == "train-dry-abcd12345678"


def test_a_run_that_saved_nothing_keeps_its_run_id_name(client, experiment):
    settings = load_settings(experiment_name=experiment)
    run_id, _ = train_run(settings, run_id="0123456789ab", version=None, status="failed")
    assert client.get_run(run_id).info.run_name == "train-0123456789ab"


def test_a_long_decision_is_cut_to_5000_characters(client, experiment):
    reason = "Model NOT promoted - " + "x" * 6000
    run_id, warning = train_run(load_settings(experiment_name=experiment), reason=reason)
    assert warning is None
    assert client.get_run(run_id).data.tags["mptrain.decision"] == reason[:5000]


def test_report_files_are_uploaded_as_artifacts(client, experiment, files, tmp_path):
    """Each report file goes under report/, byte for byte. (The model is not a run artifact
    but an MLflow model of the run: see test_registry.py.)"""
    settings = load_settings(experiment_name=experiment)
    run_id, warning = train_run(settings, artifacts=[files["md"], files["json"]])
    assert warning is None
    assert artifact_names(client, run_id, "report") == ["report.json", "report.md"]
    for key in ("md", "json"):
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=f"report/{files[key].name}",
            dst_path=str(tmp_path / "download" / key),
        )
        assert Path(local).read_bytes() == files[key].read_bytes()


def test_without_reports_no_artifacts_are_logged(client, experiment):
    run_id, warning = train_run(load_settings(experiment_name=experiment))
    assert warning is None
    assert client.list_artifacts(run_id) == []


def test_an_error_that_stops_the_train_closes_the_run_failed(client, experiment):
    """The run is open while the train works; the error that stops it closes it FAILED,
    with the error as a tag, and no run is left active."""
    settings = load_settings(experiment_name=experiment)
    with (
        pytest.raises(RuntimeError, match="fit exploded"),
        training_run(settings, "feedc0ffee12") as run,
    ):
        run_id = run.mlflow_run_id
        assert client.get_run(run_id).info.status == "RUNNING"
        raise RuntimeError("fit exploded")
    failed = client.get_run(run_id)
    assert failed.info.status == "FAILED"
    assert failed.data.tags["mptrain.status"] == "failed"
    assert failed.data.tags["mptrain.error"] == "fit exploded"
    assert mlflow.active_run() is None


def test_a_run_started_later_keeps_the_blocks_start_time_and_opens_when_needed(client, experiment):
    """start_later: nothing is opened until start() (or anything that needs the run);
    the run's start time is the block's; an error before start() still leaves a FAILED
    run with the error."""
    settings = load_settings(experiment_name=experiment)
    before = int(time.time() * 1000)
    with training_run(settings, "c0ffee00late", start_later=True) as run:
        assert client.get_experiment_by_name(experiment) is None  # nothing opened yet
        time.sleep(0.05)
        run.start()
        run.start()  # once
        run_id = run.mlflow_run_id
    opened = client.get_run(run_id)
    assert before <= opened.info.start_time < before + 50
    assert opened.info.status == "FINISHED"
    assert len(client.search_runs([opened.info.experiment_id])) == 1

    with (
        pytest.raises(RuntimeError, match="data exploded"),
        training_run(settings, "c0ffee0early", start_later=True),
    ):
        raise RuntimeError("data exploded")
    failed = [
        r
        for r in client.search_runs([opened.info.experiment_id])
        if r.data.tags["mptrain.run_id"] == "c0ffee0early"
    ]
    assert [r.info.status for r in failed] == ["FAILED"]
    assert failed[0].data.tags["mptrain.error"] == "data exploded"
    assert mlflow.active_run() is None


def test_with_mlflow_off_nothing_is_logged(client, experiment):
    settings = load_settings(experiment_name=experiment, mlflow=False)
    run_id, warning = train_run(settings)
    assert (run_id, warning) == (None, None)
    assert client.get_experiment_by_name(experiment) is None


def test_the_experiment_opens_on_its_runs_in_the_ui(client, experiment):
    """mptrain tags its experiment as a machine-learning one, so MLflow 3's UI shows its
    runs rather than the GenAI overview."""
    train_run(load_settings(experiment_name=experiment))
    tags = client.get_experiment_by_name(experiment).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"


def test_each_call_is_its_own_run(client, experiment):
    settings = load_settings(experiment_name=experiment)
    first, _ = train_run(settings, "0000000000a1", version="v0001")
    second, _ = train_run(settings, "0000000000a2", version="v0002")
    assert first != second
    exp_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([exp_id])
    assert sorted(r.info.run_name for r in runs) == ["train-v0001", "train-v0002"]


# ----------------------------------------------------------------- validation runs


def test_validation_run_has_its_params_metrics_tags_and_report(client, experiment, files):
    settings = load_settings(experiment_name=experiment, period="1y", source="prices.parquet")
    run_id, warning = validation_run(
        settings,
        metrics={**SEED, "roc_auc": 0.6},
        extra_metrics={"roc_auc": 0.6, "brier": 0.24},
        artifacts=[files["md"], files["json"]],
    )
    assert warning is None
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "validate-v0003"
    assert run.data.params == {
        "model_type": "xgb",
        "period": "1y",
        "source": "prices.parquet",
        "target": "production",
    }
    # no n_features: a validation run trains nothing
    assert run.data.metrics == pytest.approx({**SEED, "roc_auc": 0.6, "brier": 0.24})
    tags = {k: v for k, v in run.data.tags.items() if k.startswith("mptrain.")}
    assert tags == {
        "mptrain.command": "validate",
        "mptrain.run_id": "20240602-080000-ef01",
        "mptrain.status": "passed",
        "mptrain.version": "v0003",
        "mptrain.decision": "Validation passed - every metric meets its threshold",
    }
    assert artifact_names(client, run_id, "report") == ["report.json", "report.md"]
    assert artifact_names(client, run_id, "model") == []


def test_validation_of_an_unversioned_file_is_named_after_the_run_id(client, experiment):
    """A model file outside the store has no version or maybe no model type: the run is
    named after mptrain's run id and the model type param is empty."""
    settings = load_settings(experiment_name=experiment)
    run_id, warning = validation_run(
        settings, version=None, model_type=None, target="/tmp/model.bin", status="failed"
    )
    assert warning is None
    run = client.get_run(run_id)
    assert run.info.run_name == "validate-20240602-080000-ef01"
    assert run.data.params["model_type"] == ""
    assert run.data.params["target"] == "/tmp/model.bin"
    assert run.data.tags["mptrain.version"] == ""
    assert run.data.tags["mptrain.status"] == "failed"


def test_validation_and_training_runs_share_the_experiment(client, experiment):
    """Decay between retrainings shows next to the training runs."""
    settings = load_settings(experiment_name=experiment)
    train_id, _ = train_run(settings)
    validate_id, _ = validation_run(settings)
    exp_id = client.get_experiment_by_name(experiment).experiment_id
    runs = {r.info.run_id: r.data.tags["mptrain.command"] for r in client.search_runs([exp_id])}
    assert runs == {train_id: "train", validate_id: "validate"}


# ----------------------------------------------------------------- failures become warnings


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tracking server that refuses connections, with MLflow told not to retry."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", UNREACHABLE)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")


@pytest.mark.parametrize("log_run", [train_run, validation_run], ids=["train", "validate"])
def test_an_unreachable_tracking_server_is_a_warning_not_an_error(unreachable, experiment, log_run):
    """(None, "MLflow tracking failed: ...") comes back, logged as a warning, quickly and
    without raising: a run that already saved its model is not failed by tracking."""
    settings = load_settings(experiment_name=experiment)
    started = time.monotonic()
    with capture_logs() as logs:
        run_id, warning = log_run(settings)
    assert time.monotonic() - started < 30
    assert run_id is None
    assert warning is not None and warning.startswith("MLflow tracking failed: ")
    assert "127.0.0.1:9" in warning  # MLflow's reason, naming the server, is kept
    assert {"event": warning, "log_level": "warning"} in [
        {k: e.get(k) for k in ("event", "log_level")} for e in logs
    ]
    assert mlflow.active_run() is None


def test_a_failure_inside_the_run_is_a_warning_and_ends_the_run(client, experiment, tmp_path):
    """A report file that vanished before upload: the error comes back as a warning,
    the half-logged run is closed as FAILED (not left active), so the next run logs
    normally."""
    settings = load_settings(experiment_name=experiment)
    missing = tmp_path / "gone" / "report.md"
    run_id, warning = train_run(settings, "00000000fa11", version="v0001", artifacts=[missing])
    assert run_id is None
    assert warning is not None and warning.startswith("MLflow tracking failed: ")
    assert mlflow.active_run() is None
    exp_id = client.get_experiment_by_name(experiment).experiment_id
    (failed,) = client.search_runs([exp_id])
    assert failed.info.run_name == "train-00000000fa11" and failed.info.status == "FAILED"

    after, warning = train_run(settings, version="v0002")
    assert warning is None and client.get_run(after).info.status == "FINISHED"


# ----------------------------------------------------------------- MLflow's own logging


def test_mlflow_is_told_not_to_configure_logging_unless_the_user_said(
    monkeypatch: pytest.MonkeyPatch, experiment
):
    """MLflow's log handler would bypass mptrain's; an explicit choice is kept."""
    settings = load_settings(experiment_name=experiment)
    monkeypatch.delenv("MLFLOW_CONFIGURE_LOGGING", raising=False)
    train_run(settings)
    assert mlflow.environment_variables.MLFLOW_CONFIGURE_LOGGING.get() is False
    monkeypatch.setenv("MLFLOW_CONFIGURE_LOGGING", "true")
    train_run(settings)
    assert mlflow.environment_variables.MLFLOW_CONFIGURE_LOGGING.get() is True


@pytest.mark.slow  # a real train in a new process, which creates a new MLflow database
def test_a_first_run_in_a_new_process_prints_none_of_mlflows_own_log_lines(tmp_path: Path):
    """MLflow configures its logging when it is imported: the environment defaults must
    be set before that, even when the import happens in the background thread that opens
    the run. A new store's migrations ("Creating initial MLflow database tables...") were
    printed on the console, past --quiet."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MPTRAIN_"))}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "marketpredictor_train", "train", "--source", "sample", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode in (0, 2), proc.stderr[-2000:]
    assert (tmp_path / "new" / "mlflow.db").exists()
    output = proc.stdout + proc.stderr
    assert "INFO mlflow" not in output and "database tables" not in output, output[-2000:]


# ----------------------------------------------------------------- the default local store


@pytest.mark.slow
def test_a_plain_mlruns_folder_gets_a_note_and_runs_go_to_mlflow_db(
    monkeypatch: pytest.MonkeyPatch, experiment
):
    """No MLFLOW_TRACKING_URI and a ./mlruns of MLflow's file store (where MLflow itself
    would stay, without a database for the registry): mptrain tracks in ./mlflow.db, keeps
    its artifacts apart in ./mlartifacts, and says so once."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    old = Path("mlruns/1")
    old.mkdir(parents=True)
    (old / "meta.yaml").write_text("name: from-before\n")
    try:
        with capture_logs() as logs:
            run_id, warning = train_run(load_settings(experiment_name=experiment))
            train_run(load_settings(experiment_name=experiment), run_id="000000000002")
        assert warning is None and run_id
        assert mlflow.get_tracking_uri() == "sqlite:///mlflow.db"
        client = mlflow.MlflowClient()
        assert client.get_run(run_id).info.status == "FINISHED"
        location = client.get_experiment_by_name(experiment).artifact_location
        assert location == (Path.cwd() / "mlartifacts").as_uri()
    finally:
        mlflow.set_tracking_uri(None)
    notes = [e["event"] for e in logs if "./mlruns holds runs" in e["event"]]
    assert len(notes) == 1 and "mlflow ui --backend-store-uri ./mlruns" in notes[0]
    assert Path("mlflow.db").is_file()
    assert sorted(p.name for p in Path("mlruns").iterdir()) == ["1"]  # left as it was


def test_a_train_inside_a_callers_run_is_its_child_and_opens_at_once(client, experiment):
    """With the caller's MLflow run active, the training run is opened in the caller's
    thread as its child (elsewhere it opens in the background while the train works)."""
    with mlflow.start_run(experiment_id=client.create_experiment(f"{experiment}-caller")) as parent:
        with training_run(load_settings(experiment_name=experiment), "c0ffee000001") as run:
            assert run._starting is None  # opened synchronously
            run_id = run.mlflow_run_id
        assert mlflow.active_run().info.run_id == parent.info.run_id
    child = client.get_run(run_id)
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.info.status == "FINISHED"


def test_a_callers_chosen_experiment_does_not_stop_the_model_being_logged(
    client, experiment, tmp_path
):
    """A caller's mlflow.set_experiment() (another experiment) does not keep the run,
    opened in the background, from becoming active to log the model in it."""
    from mlflow.tracking import fluent

    mlflow.set_experiment(f"{experiment}-elsewhere")
    try:
        with training_run(load_settings(experiment_name=experiment), "c0ffee000003") as run:
            run._activate()
            assert mlflow.active_run().info.run_id == run.mlflow_run_id
    finally:
        fluent._active_experiment_id = None
    assert mlflow.active_run() is None
    assert fluent._active_experiment_id is None


def test_a_train_run_opened_in_the_background_is_recorded_whole(client, experiment):
    """Without a caller's run the MLflow run opens in a background thread; reading its id
    waits for it, and it carries the tags mlflow.start_run would add (user, source)."""
    with training_run(load_settings(experiment_name=experiment), "c0ffee000002") as run:
        assert run._starting is not None
        run_id = run.mlflow_run_id
        assert client.get_run(run_id).info.status == "RUNNING"
    recorded = client.get_run(run_id)
    assert recorded.info.status == "FINISHED"
    assert recorded.info.run_name == "train-c0ffee000002"
    assert recorded.data.tags["mptrain.run_id"] == "c0ffee000002"
    assert "mlflow.user" in recorded.data.tags and "mlflow.source.name" in recorded.data.tags
    assert recorded.data.params["model_type"] == "xgb"
    assert mlflow.active_run() is None
