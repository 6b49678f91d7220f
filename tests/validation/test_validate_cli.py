"""Through the CLI: `mptrain validate` on each kind of target, its exit codes, the
report beside the version and in MLflow, and train's validation flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.validation.markets import LOW_BAR_FLAGS


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture
def trained(cli, small_signal_market, tmp_path):
    """`mptrain train` on the planted signal, MLflow on: a promoted production model."""
    out = tmp_path / "train.json"
    result = cli("train", "--source", small_signal_market, "--output-json", out)
    assert result.exit_code == 0, result.output
    return _json(out)


@pytest.mark.slow
def test_validate_production_a_version_and_a_model_file(
    cli, trained, small_signal_market, tmp_path
):
    """The same model on the same data gives the same numbers whichever way it is named;
    each run writes its own report beside the version."""
    version = trained["version"]
    targets = {
        "production": (),
        "version": ("--version", version),
        "model_file": ("--model-file", f"models/model_{version}.bin"),
    }
    for kind, args in targets.items():
        out = tmp_path / f"{kind}.json"
        result = cli("validate", "--source", small_signal_market, *args, "--output-json", out)
        assert result.exit_code == 0, result.output
        assert "Validation passed" in result.output
        doc = _json(out)
        assert doc["target"] == kind and doc["version"] == version and doc["passed"]
        assert doc["n_test"] == trained["n_test"]
        for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
            assert doc["metrics"][name] == pytest.approx(trained["metrics"][name])
        folder = Path(doc["report_dir"])
        assert folder.parent == Path("models") / "reports" / version
        assert folder.name.startswith("validate_")
        report = _json(folder / "report.json")
        assert report["metrics"] == doc["metrics"]
        assert f"{doc['metrics']['accuracy']:.2%}" in (folder / "report.md").read_text()


@pytest.mark.slow
def test_train_logs_the_report_to_mlflow(trained):
    import mlflow

    client = mlflow.MlflowClient()
    run = client.get_run(trained["mlflow_run_id"])
    names = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report.md", "report.html", "report.json", "equity.png"} <= names
    assert run.data.metrics["roc_auc"] == pytest.approx(trained["metrics"]["roc_auc"])
    ci = trained["validation"]["accuracy_ci"]
    assert run.data.metrics["accuracy_ci_low"] == pytest.approx(ci["low"])
    assert Path(trained["report_dir"]) == Path("models") / "reports" / trained["version"]


@pytest.mark.slow
def test_validate_logs_its_own_mlflow_run_with_the_report(
    cli, trained, small_signal_market, tmp_path
):
    """Each validate is an MLflow run beside the training runs: its metrics, verdict and
    report, so decay between retrainings is visible where the training runs are."""
    import mlflow

    out = tmp_path / "validate.json"
    result = cli("validate", "--source", small_signal_market, "--output-json", out)
    assert result.exit_code == 0, result.output
    doc = _json(out)
    client = mlflow.MlflowClient()
    run = client.get_run(doc["mlflow_run_id"])
    assert run.data.tags["mptrain.command"] == "validate"
    assert run.data.tags["mptrain.version"] == trained["version"]
    assert run.data.tags["mptrain.status"] == "passed"
    assert run.data.metrics["accuracy"] == pytest.approx(doc["metrics"]["accuracy"])
    names = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report.md", "report.html", "report.json"} <= names


@pytest.mark.slow
def test_validate_below_thresholds_exits_2_and_compares_with_production(
    cli, champion_store, small_late_signal_market, tmp_path
):
    """A saved version that is not production is scored beside production on the same
    rows; below a threshold the command exits 2 naming the metric."""
    train_out = tmp_path / "train.json"
    cli("train", "--source", small_late_signal_market, *LOW_BAR_FLAGS, "--output-json", train_out)
    challenger = _json(train_out)
    assert challenger["promoted"] is False and challenger["version"]

    out = tmp_path / "validate.json"
    result = cli(
        "validate",
        "--source",
        small_late_signal_market,
        "--version",
        challenger["version"],
        "--output-json",
        out,
    )
    assert result.exit_code == 2, result.output
    assert "Validation failed - accuracy below threshold" in result.output
    doc = _json(out)
    assert doc["status"] == "failed" and doc["exit_code"] == 2
    comparison = doc["validation"]["comparison"]
    assert comparison["production_version"] == doc["production_version"]
    assert comparison["n_common"] == doc["n_test"]
    assert doc["production_metrics"]["accuracy"] > doc["metrics"]["accuracy"]


def test_validate_without_a_production_model_fails_clearly(cli, small_signal_market, tmp_path):
    out = tmp_path / "r.json"
    result = cli("validate", "--source", small_signal_market, "--output-json", out)
    assert result.exit_code == 1, result.output
    assert "No production model" in result.output
    assert _json(out)["status"] == "failed"


def test_validate_an_unknown_version_is_a_configuration_error(cli, small_signal_market):
    result = cli("validate", "--source", small_signal_market, "--version", "20990101_000000")
    assert result.exit_code == 3, result.output
    assert "Unknown model version" in result.output


@pytest.mark.slow
def test_train_validation_flags_reach_the_backtest(cli, small_signal_market, tmp_path):
    out = tmp_path / "r.json"
    report_dir = tmp_path / "report"
    result = cli(
        "train",
        "--source",
        small_signal_market,
        "--dry-run",
        "--backtest-months",
        "4",
        "--embargo-days",
        "2",
        "--cost-per-trade",
        "0.001",
        "--primary-metric",
        "f1",
        "--dead-band",
        "0.001",
        "--report-dir",
        report_dir,
        *LOW_BAR_FLAGS,
        "--output-json",
        out,
    )
    assert result.exit_code == 0, result.output
    for column in ("metric", "production", "always up", "threshold"):
        assert column in result.output
    doc = _json(out)
    v = doc["validation"]
    assert doc["data_window"]["purge_gap_days"] == 3  # horizon 1 + embargo 2
    assert 75 <= v["window"]["n_days"] <= 90  # about four months of trading days
    assert v["trading"]["cost_per_trade"] == 0.001
    assert v["dead_band"] == 0.001 and doc["primary_metric"] == "f1"
    assert doc["report_dir"] == str(report_dir)
    assert (report_dir / "report.html").is_file()


@pytest.mark.slow
def test_train_skip_validation_through_the_cli(cli, small_signal_market, tmp_path):
    out = tmp_path / "r.json"
    result = cli(
        "train", "--source", small_signal_market, "--skip-validation", "--output-json", out
    )
    assert result.exit_code == 0, result.output
    assert "Validation skipped" in result.output
    doc = _json(out)
    assert doc["status"] == "not_validated" and doc["promoted"] is False
    assert doc["skipped_validation"] is True and doc["validation"] is None
    assert doc["version"] and not Path("models/prod_model.bin").exists()
