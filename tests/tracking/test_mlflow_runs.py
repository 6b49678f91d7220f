"""MLflow tracking (tracking.mlflow_runs), called directly against a real local MLflow
store: the session's sqlite store that tests/conftest.py puts in MLFLOW_TRACKING_URI.
Each test logs into an experiment of its own and reads the run back with MlflowClient."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import mlflow
import pytest
from structlog.testing import capture_logs

from marketpredictor_train.config import load_settings
from marketpredictor_train.tracking import log_training_run, log_validation_run

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
        "model": folder / "model_v0003.bin",
        "md": folder / "reports" / "report.md",
        "json": folder / "reports" / "report.json",
    }
    out["model"].write_bytes(b"\x00model payload\xff" * 10)
    out["md"].write_text("# Validation report\n", encoding="utf-8")
    out["json"].write_text('{"metrics": {}}\n', encoding="utf-8")
    return out


def train_run(settings, **overrides):
    kwargs = {
        "run_id": "20240601-120000-abcd",
        "model_type": "xgb",
        "params": {"n_estimators": 100, "learning_rate": 0.1},
        "metrics": SEED,
        "n_features": 23,
        "status": "promoted",
        "promoted": True,
        "version": "v0003",
        "model_path": None,
        "reason": "Model promoted - every metric meets its threshold",
    }
    kwargs.update(overrides)
    return log_training_run(settings, **kwargs)


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
    """Model params are logged as given (MLflow stores strings); the run's model type,
    period, horizon and source are added and win over a same-named model param; values
    that are not scalars are logged as their str()."""
    settings = load_settings(experiment_name=experiment, period="2y", horizon=3, source="data.csv")
    params = {
        "n_estimators": 100,
        "learning_rate": 0.05,
        "max_features": None,
        "bootstrap": True,
        "layers": [64, 32],
        "monotone": {"rsi_14": 1},
        "model_type": "overridden",
    }
    run_id, warning = train_run(settings, model_type="rf", params=params)
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
        run_id="20240601-120000-abcd",
        status="dry_run",
        promoted=False,
        version=None,
        reason="Dry run - model passed but was not promoted",
    )
    run = client.get_run(run_id)
    tags = {k: v for k, v in run.data.tags.items() if k.startswith("mptrain.")}
    assert tags == {
        "mptrain.command": "train",
        "mptrain.run_id": "20240601-120000-abcd",
        "mptrain.status": "dry_run",
        "mptrain.promoted": "false",
        "mptrain.version": "",
        "mptrain.decision": "Dry run - model passed but was not promoted",
        "mptrain.dry_run": "true",
        "mptrain.forced": "false",
    }
    # without a version the run is named after mptrain's run id
    assert run.info.run_name == "train-20240601-120000-abcd"


def test_a_long_decision_is_cut_to_5000_characters(client, experiment):
    reason = "Model NOT promoted - " + "x" * 6000
    run_id, warning = train_run(load_settings(experiment_name=experiment), reason=reason)
    assert warning is None
    assert client.get_run(run_id).data.tags["mptrain.decision"] == reason[:5000]


def test_model_file_and_report_files_are_uploaded_as_artifacts(client, experiment, files, tmp_path):
    """The model file goes under model/, each report file under report/, byte for byte."""
    settings = load_settings(experiment_name=experiment)
    run_id, warning = train_run(
        settings, model_path=str(files["model"]), artifacts=[files["md"], files["json"]]
    )
    assert warning is None
    assert artifact_names(client, run_id, "model") == ["model_v0003.bin"]
    assert artifact_names(client, run_id, "report") == ["report.json", "report.md"]
    for folder, key in (("model", "model"), ("report", "md"), ("report", "json")):
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=f"{folder}/{files[key].name}",
            dst_path=str(tmp_path / "download" / key),
        )
        assert Path(local).read_bytes() == files[key].read_bytes()


def test_without_a_model_path_or_reports_no_artifacts_are_logged(client, experiment):
    run_id, warning = train_run(load_settings(experiment_name=experiment), model_path=None)
    assert warning is None
    assert client.list_artifacts(run_id) == []


def test_each_call_is_its_own_run(client, experiment):
    settings = load_settings(experiment_name=experiment)
    first, _ = train_run(settings, version="v0001")
    second, _ = train_run(settings, version="v0002")
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
    run_id, warning = train_run(settings, version="v0001", artifacts=[missing])
    assert run_id is None
    assert warning is not None and warning.startswith("MLflow tracking failed: ")
    assert mlflow.active_run() is None
    exp_id = client.get_experiment_by_name(experiment).experiment_id
    (failed,) = client.search_runs([exp_id])
    assert failed.info.run_name == "train-v0001" and failed.info.status == "FAILED"

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
