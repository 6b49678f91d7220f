"""The validation stage of `train`, end to end on synthetic markets: honest about a random
walk, finds a planted signal, champion vs challenger on the same rows, and what --force,
--dry-run, --skip-validation and --refit do to promotion."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from marketpredictor_train import api
from marketpredictor_train.errors import DataError
from marketpredictor_train.store import ModelStore, read_model_file
from tests.validation.markets import LOW_BAR


@pytest.mark.slow
def test_random_walk_scores_about_50_percent_and_promotes_nothing(random_walk_run):
    tmp, result = random_walk_run
    v = result.to_dict()["validation"]
    accuracy = result.metrics["accuracy"]
    assert abs(accuracy - 0.5) < 0.05
    assert v["accuracy_ci"]["low"] < 0.5 < v["accuracy_ci"]["high"]
    assert abs(result.metrics["roc_auc"] - 0.5) < 0.06
    for baseline in v["baselines"].values():
        assert abs(baseline["accuracy"] - 0.5) < 0.06
        assert baseline["n_samples"] == result.n_test
    assert result.metrics["n_samples"] == result.n_test > 500
    assert result.promoted is False and result.exit_code == 2
    assert result.reason.startswith("Model NOT promoted - accuracy below threshold")
    store = ModelStore(tmp / "models")
    assert store.production() is None and store.history() == []


@pytest.mark.slow
def test_planted_signal_is_found_and_promoted(champion_run):
    tmp, result = champion_run
    v = result.to_dict()["validation"]
    best_baseline = max(b["accuracy"] for b in v["baselines"].values())
    assert result.metrics["accuracy"] > best_baseline + 0.15
    assert v["accuracy_ci"]["low"] > 0.6  # clears the seed's bar with room to spare
    assert result.metrics["roc_auc"] > 0.7
    # the model found the feature that carries the signal
    importance = v["feature_importance"]
    assert max(importance, key=importance.get) == "volume_ratio_20"
    trading = v["trading"]
    assert trading["strategy"]["cumulative_return"] > trading["buy_and_hold"]["cumulative_return"]
    for ticker in v["per_ticker"]:
        assert ticker["accuracy"] > ticker["always_up_accuracy"]
    assert result.promoted and result.passed_validation and result.exit_code == 0
    assert ModelStore(tmp / "models").production().version == result.version


def _production_accuracy_by_hand(models: Path, source: Path, backtest_start: str):
    """Score the production model on the backtest rows without the validation code."""
    from marketpredictor_train.features import build_features, make_labels
    from marketpredictor_train.models.trained import TrainedModel

    model = TrainedModel.from_model_file(ModelStore(models).load_production())
    ohlcv = pl.read_csv(source, try_parse_dates=True)
    rows = (
        build_features(ohlcv, model.spec)
        .join(make_labels(ohlcv, horizon=1), on=["ticker", "date"])
        .filter(pl.col("date") >= dt.date.fromisoformat(backtest_start))
        .drop_nulls(["label", *model.feature_columns])
    )
    pred = model.predict_proba(rows, model.spec) >= 0.5
    return rows.height, float(np.mean(pred == rows.get_column("label").to_numpy()))


@pytest.mark.slow
def test_a_worse_challenger_is_refused_on_the_same_rows(
    champion_store, champion_run, small_late_signal_market, settings_for
):
    champion = champion_run[1].version
    result = api.train(settings_for(small_late_signal_market, **LOW_BAR, skill_gate=False))
    comparison = result.to_dict()["validation"]["comparison"]

    assert result.exit_code == 2 and not result.promoted
    assert result.reason.startswith(
        f"Model NOT promoted - accuracy may be worse than production {champion}'s by more "
        "than 1.0 pts"
    )
    assert ModelStore(champion_store).production().version == champion
    assert result.production_version == comparison["production_version"] == champion

    n_rows, accuracy = _production_accuracy_by_hand(
        champion_store, small_late_signal_market, result.data_window["backtest_start"]
    )
    assert comparison["n_common"] == n_rows == result.n_test
    assert comparison["production"]["accuracy"] == pytest.approx(accuracy)
    assert result.production_metrics == comparison["production"]
    assert comparison["difference"]["accuracy"] == pytest.approx(
        comparison["new"]["accuracy"] - comparison["production"]["accuracy"]
    )
    assert comparison["verdict"] == "significantly worse"
    assert comparison["primary_difference_ci"]["high"] < 0
    mcnemar = comparison["mcnemar"]
    assert mcnemar["production_only_correct"] > mcnemar["new_only_correct"]
    assert mcnemar["p_value"] < 0.01


@pytest.mark.slow
def test_force_promotes_a_worse_model_and_the_history_says_forced(
    champion_store, small_late_signal_market, settings_for
):
    result = api.train(settings_for(small_late_signal_market, force=True))
    assert result.promoted and result.forced and not result.passed_validation
    assert result.exit_code == 0
    assert result.reason.startswith("Forced promotion despite: accuracy below threshold")
    store = ModelStore(champion_store)
    assert store.production().version == result.version
    assert store.history()[-1].forced is True


@pytest.mark.slow
def test_dry_run_never_promotes_and_reports_under_the_logs_folder(
    champion_store, champion_run, small_signal_market, settings_for
):
    before = sorted(p.name for p in champion_store.glob("*.bin"))
    result = api.train(settings_for(small_signal_market, dry_run=True, **LOW_BAR))
    assert result.status == "dry_run" and not result.promoted and result.version is None
    assert result.passed_validation and result.exit_code == 0
    assert sorted(p.name for p in champion_store.glob("*.bin")) == before
    assert ModelStore(champion_store).production().version == champion_run[1].version
    report = Path(result.report_dir)
    assert report.parent == Path("logs") / "reports" and report.name.startswith("dry_run_")
    assert (report / "report.md").is_file() and (report / "report.html").is_file()


@pytest.mark.slow
def test_skip_validation_saves_but_promotes_only_with_force(small_signal_market, settings_for):
    skipped = api.train(settings_for(small_signal_market, skip_validation=True))
    assert skipped.status == "not_validated" and skipped.exit_code == 0
    assert not skipped.promoted and skipped.skipped_validation
    assert skipped.metrics == {} and skipped.validation is None and skipped.report_dir is None
    manifest = read_model_file(Path(skipped.model_path)).manifest
    assert manifest["validation"]["status"] == "skipped"
    assert ModelStore(Path("models")).production() is None

    # the held-out months stayed unseen, so the version can be validated afterwards
    later = api.validate(settings_for(small_signal_market), version=skipped.version)
    assert later.n_test > 0 and later.passed
    assert later.data_window["backtest_start"] > manifest["data_window"]["train_end"]

    forced = api.train(settings_for(small_signal_market, skip_validation=True, force=True))
    assert forced.promoted and forced.forced and forced.exit_code == 0
    assert forced.reason.startswith("Forced promotion without validation")
    assert ModelStore(Path("models")).history()[-1].forced is True


@pytest.mark.slow
def test_refit_promotes_a_model_fitted_on_every_row_without_claiming_its_metrics(
    small_signal_market, settings_for
):
    result = api.train(settings_for(small_signal_market, refit=True, **LOW_BAR))
    assert result.promoted and result.refit
    assert "before the refit" in result.metrics_of
    manifest = read_model_file(Path(result.model_path)).manifest
    assert manifest["metrics"] == {}  # the saved model has no out-of-sample metrics
    assert manifest["refit"]["validated_metrics"]["accuracy"] == result.metrics["accuracy"]
    assert manifest["n_train"] == result.n_train + result.n_test
    assert manifest["data_window"]["train_end"] >= result.data_window["backtest_start"]
    report = (Path(result.report_dir) / "report.md").read_text()
    assert "before the refit" in report

    # every row in the window was learned from: there is nothing honest left to score
    with pytest.raises(DataError, match="no backtest rows after the model's own training"):
        api.validate(settings_for(small_signal_market))


@pytest.mark.slow
def test_refit_never_happens_to_a_model_that_is_not_promoted(
    small_late_signal_market, settings_for
):
    result = api.train(settings_for(small_late_signal_market, refit=True))
    assert not result.promoted and not result.refit
    manifest = read_model_file(Path(result.model_path)).manifest
    assert manifest["metrics"]["accuracy"] == result.metrics["accuracy"]
    assert manifest["validation"]["status"] == "validated"


@pytest.mark.slow
def test_report_files_hold_the_numbers_of_the_result(champion_run):
    tmp, result = champion_run
    folder = Path(result.report_dir)
    assert folder == tmp / "models" / "reports" / result.version
    names = {Path(p).name for p in result.report_files}
    assert {"report.md", "report.html", "report.json", "equity.png", "confusion.png"} <= names
    assert {"calibration.png", "importance.png"} <= names
    doc = json.loads((folder / "report.json").read_text())
    assert doc["metrics"] == result.validation.metrics
    assert doc["decision"]["promoted"] is True
    md = (folder / "report.md").read_text()
    html = (folder / "report.html").read_text()
    ci = result.validation.accuracy_ci
    for number in (result.metrics["accuracy"], ci["low"], ci["high"]):
        assert f"{number:.2%}" in md and f"{number:.2%}" in html
    strategy = result.validation.trading.strategy["cumulative_return"]
    assert f"{strategy:.2%}" in md
    assert html.count("data:image/png;base64,") == 4
