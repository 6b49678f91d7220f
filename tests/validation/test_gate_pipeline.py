"""The promotion decision end to end, with real fits: no promotion without skill over the
naive baselines, a champion judged only on rows it never saw, the dead band on training
labels only, tuned parameters checked against the window, calibration, index membership,
and what models-list and rollback say of the gate."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from marketpredictor_train import api
from marketpredictor_train.store import ModelStore, read_model_file
from tests.validation.markets import LOW_BAR, LOW_BAR_FLAGS, SMALL, business_days, market, write


def trending_market(*, seed: int, drift: float, days: int = 560, tickers: int = 4) -> pl.DataFrame:
    """A random walk with a strong upward drift: at a long horizon almost every label is up."""
    rng = np.random.default_rng(seed)
    dates = business_days(days)
    frames = []
    for i in range(tickers):
        step = drift + rng.normal(0, 0.01, days)
        close = 40.0 * np.exp(np.cumsum(step))
        open_ = close * np.exp(rng.normal(0, 0.002, days))
        frames.append(
            pl.DataFrame(
                {
                    "date": dates,
                    "ticker": f"T{i}",
                    "open": open_,
                    "high": np.maximum(open_, close) * 1.004,
                    "low": np.minimum(open_, close) * 0.996,
                    "close": close,
                    "volume": np.round(np.exp(rng.normal(13, 0.4, days))),
                }
            )
        )
    return pl.concat(frames)


@pytest.mark.slow
def test_a_model_that_loses_to_always_up_in_an_up_trend_is_not_promoted(cli, tmp_path):
    """At h=20 in a strong up-trend always-up is right on most rows; with the seed's
    thresholds out of the way, the skill gate alone refuses the model, naming the baseline."""
    source = write(trending_market(seed=3, drift=0.002), tmp_path / "trend.csv")
    out = tmp_path / "r.json"
    result = cli("train", "--source", source, "--horizon", 20, *LOW_BAR_FLAGS, "--output-json", out)
    assert result.exit_code == 2, result.output
    doc = json.loads(out.read_text())
    skill = doc["validation"]["skill"]
    assert skill["baseline"] == "always_up" and skill["baseline_value"] > 0.7
    assert not skill["beats_baseline"]
    assert doc["reason"].startswith("Model NOT promoted - no skill")
    assert (
        "vs always-up" in doc["reason"] and f"on the same {doc['n_test']:,} rows" in doc["reason"]
    )
    assert not doc["promoted"] and ModelStore(Path("models")).production() is None


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_random_walks_promote_nothing_under_the_default_gate(tmp_path, settings_for, seed):
    """No thresholds in the way: the skill gate alone keeps every random walk out."""
    source = write(market(seed=seed, **SMALL), tmp_path / "walk.csv")
    result = api.train(settings_for(source, models_dir=tmp_path / "m", **LOW_BAR))
    assert not result.promoted and result.exit_code == 2
    assert "skill" in result.reason or "probabilities" in result.reason


@pytest.mark.slow
def test_a_refit_champion_does_not_block_an_honest_challenger(tmp_path, settings_for):
    """A champion refit on every row has seen the whole backtest; scored there it would look
    unbeatable. It is left out of the comparison and the challenger is judged on its own."""
    source = write(market(seed=21, **SMALL), tmp_path / "walk.csv")
    models = tmp_path / "m"
    champion = api.train(settings_for(source, models_dir=models, refit=True, force=True, **LOW_BAR))
    assert champion.promoted and champion.refit
    challenger = api.train(
        settings_for(source, models_dir=models, seed=5, skill_gate=False, **LOW_BAR)
    )
    assert challenger.promoted, challenger.reason
    assert challenger.validation is not None and challenger.validation.comparison is None
    assert any("is not compared" in w for w in challenger.warnings)
    assert ModelStore(models).production().version == challenger.version


@pytest.mark.slow
def test_the_dead_band_leaves_backtest_rows_alone(tmp_path, settings_for):
    source = write(market(seed=4, **SMALL), tmp_path / "walk.csv")
    plain = api.train(settings_for(source, dry_run=True, **LOW_BAR))
    banded = api.train(settings_for(source, dry_run=True, dead_band=0.004, **LOW_BAR))
    assert banded.n_test == plain.n_test
    assert banded.n_train < plain.n_train
    assert banded.validation.metrics["n_samples"] == plain.validation.metrics["n_samples"]
    assert any("training labels only" in n for n in banded.validation.notes)


@pytest.mark.slow
def test_parameters_tuned_on_a_window_that_reaches_into_the_backtest_are_refused(cli, tmp_path):
    source = write(market(seed=6, **SMALL), tmp_path / "walk.csv")
    tuned = cli("optimize", "--source", source, "--trials", 1, "--cv-folds", 2)
    assert tuned.exit_code == 0, tuned.output
    longer = cli("train", "--source", source, "--backtest-months", 12, "--dry-run")
    assert longer.exit_code == 3, longer.output
    assert "best_hyperparameters.json was tuned on rows up to" in longer.output
    assert "--backtest-months" in longer.output
    same = cli("train", "--source", source, "--dry-run", *LOW_BAR_FLAGS, "--no-skill-gate")
    assert same.exit_code == 0, same.output
    # a longer horizon's purge gap ends this run's training part a day earlier: refused too
    assert cli("train", "--source", source, "--dry-run", "--horizon", 2).exit_code == 3
    # tuned for horizon 2 (ending earlier), used at horizon 1: allowed, with a warning
    assert cli("optimize", "--source", source, "--trials", 1, "--cv-folds", 2, "--horizon", 2)
    other = cli("train", "--source", source, "--dry-run", *LOW_BAR_FLAGS, "--no-skill-gate")
    assert other.exit_code == 0, other.output
    said = " ".join(other.output.split())
    assert "tuned with another horizon (2 vs 1), purge gap (horizon + embargo) (2 vs 1)" in said


@pytest.mark.slow
def test_calibration_is_fitted_saved_applied_and_shown(tmp_path, settings_for, small_signal_market):
    models = tmp_path / "m"
    result = api.train(settings_for(small_signal_market, models_dir=models, force=True))
    manifest = read_model_file(Path(result.model_path)).manifest
    calibration = manifest["calibration"]
    assert calibration["method"] == "isotonic" and calibration["n_rows"] > 100
    assert calibration["fitted_on"]["valid_end"] < result.data_window["train_end"] or (
        calibration["fitted_on"]["valid_end"] <= result.data_window["train_end"]
    )
    before = result.validation.uncalibrated
    assert before is not None and before["method"] == "isotonic"
    report = json.loads((Path(result.report_dir) / "report.json").read_text())
    assert report["uncalibrated"]["log_loss"] == pytest.approx(before["log_loss"])
    # `mptrain validate` scores the saved model with the same calibrated probabilities
    checked = api.validate(settings_for(small_signal_market, models_dir=models))
    assert checked.metrics["log_loss"] == pytest.approx(result.metrics["log_loss"])

    plain = api.train(settings_for(small_signal_market, dry_run=True, calibration="none"))
    assert plain.validation.uncalibrated is None


def test_a_malformed_calibration_in_a_manifest_is_a_model_file_error():
    from marketpredictor_train.errors import ModelFileError
    from marketpredictor_train.models.calibration import Calibrator

    with pytest.raises(ModelFileError, match="malformed calibration"):
        Calibrator.from_dict({"method": "isotonic", "x": [0.1, 0.2], "y": [0.3]})
    with pytest.raises(ModelFileError):
        Calibrator.from_dict({"method": "magic"})
    platt = Calibrator.from_dict({"method": "platt", "a": 1.0, "b": 0.0})
    assert platt.apply(np.array([0.3]))[0] == pytest.approx(0.3)


@pytest.mark.slow
def test_rows_outside_the_index_membership_are_left_out(cli, tmp_path):
    frame = market(seed=8, **SMALL)
    source = write(frame, tmp_path / "walk.csv")
    dates = frame.get_column("date").unique().sort().to_list()
    cut = dates[len(dates) // 2]
    members = tmp_path / "members.csv"
    members.write_text(
        "ticker,start,end\n"
        f"AAA,{dates[0]},\nBBB,{dates[0]},\nCCC,{dates[0]},\nDDD,{dates[0]},{cut}\n"
    )
    full = tmp_path / "full.json"
    member = tmp_path / "member.json"
    common = ("--source", source, "--dry-run", *LOW_BAR_FLAGS, "--no-skill-gate")
    assert cli("train", *common, "--output-json", full).exit_code == 0
    result = cli("train", *common, "--universe", members, "--output-json", member)
    assert result.exit_code == 0, result.output
    a, b = json.loads(full.read_text()), json.loads(member.read_text())
    assert b["n_train"] < a["n_train"] and b["n_test"] < a["n_test"]
    tickers = {row["ticker"] for row in b["validation"]["per_ticker"]}
    assert tickers == {"AAA", "BBB", "CCC"}  # DDD left the index before the backtest
    assert any("Survivorship" in n for n in a["validation"]["notes"])
    assert not any("Survivorship" in n for n in b["validation"]["notes"])

    bad = tmp_path / "bad.csv"
    bad.write_text("ticker,start,end\nAAA,2021-05-01,2020-01-01\n")
    refused = cli("train", *common, "--universe", bad)
    assert refused.exit_code == 1 and "ending before they start" in refused.output
    missing = cli("train", *common, "--universe", tmp_path / "nope.csv")
    assert missing.exit_code == 3


@pytest.mark.slow
def test_models_list_and_rollback_speak_of_the_gate(cli, tmp_path, settings_for):
    source = write(market(seed=9, **SMALL), tmp_path / "walk.csv")
    models = tmp_path / "m"
    first = api.train(
        settings_for(source, models_dir=models, force=True, **LOW_BAR, skill_gate=False)
    )
    failed = api.train(settings_for(source, models_dir=models, seed=3))  # thresholds: fails
    assert first.promoted and not failed.promoted

    listing = cli("models-list", "--json", "--models-dir", models)
    doc = json.loads(listing.stdout)
    decisions = {m["version"]: m["decision"] for m in doc["models"]}
    assert decisions[first.version]["passed"] is True
    assert decisions[failed.version] == {"passed": False, "reason": failed.reason}
    shown = cli("models-list", "--models-dir", models)
    assert failed.reason[:40] in " ".join(shown.output.split())

    back = cli("rollback", "--version", failed.version, "--models-dir", models)
    assert back.exit_code == 0, back.output
    assert "did not pass the promotion gate" in " ".join(back.output.split())
    history = ModelStore(models).history()
    same = cli("rollback", "--version", failed.version, "--models-dir", models, "--json")
    assert same.exit_code == 0
    assert json.loads(same.stdout)["status"] == "unchanged"
    assert ModelStore(models).history() == history  # nothing recorded


def test_a_malformed_membership_date_is_named(tmp_path):
    from marketpredictor_train.data.membership import read_membership
    from marketpredictor_train.errors import DataError

    path = tmp_path / "m.csv"
    path.write_text("ticker,start,end\nAAA,yesterday,\n")
    with pytest.raises(DataError, match="must be dates"):
        read_membership(path)
    path.write_text(f"Ticker,Start,End\naaa,{dt.date(2020, 1, 1)},\n")
    assert read_membership(path).get_column("ticker").to_list() == ["AAA"]
