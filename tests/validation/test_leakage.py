"""Leakage is caught: a feature that reads tomorrow's close stops the run, training rows
whose label reaches into the backtest are purged, and (the stakes) the same leak left
unguarded turns a random walk into a ~100% "model"."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from marketpredictor_train import api, features
from marketpredictor_train.errors import TrainingError
from tests.validation.markets import market

_honest_build_features = features.build_features


def leaky_build_features(ohlcv, spec=None, *, only=None):
    """The honest features, except that roc_1 is tomorrow's return: look-ahead."""
    honest = _honest_build_features(ohlcv, spec, only=only)
    frame = ohlcv.collect() if isinstance(ohlcv, pl.LazyFrame) else ohlcv
    close = pl.col("close")
    tomorrow = frame.sort("ticker", "date").select(
        "ticker", "date", (close.shift(-1).over("ticker") / close - 1).alias("_leak")
    )
    return (
        honest.join(tomorrow, on=["ticker", "date"], how="left")
        .with_columns(pl.col("_leak").alias("roc_1"))
        .drop("_leak")
        .sort("ticker", "date")
    )


@pytest.fixture
def leaky(monkeypatch):
    monkeypatch.setattr(features, "build_features", leaky_build_features)


def test_lookahead_guard_passes_the_honest_features():
    from marketpredictor_train.dataset.guards import check_no_lookahead

    frame = market(seed=1, tickers=("AAA", "BBB"), days=300)
    check_no_lookahead(frame, features.default_spec(), dt.date(2020, 9, 1))


def test_lookahead_guard_names_a_feature_that_reads_tomorrow(leaky):
    from marketpredictor_train.dataset.guards import check_no_lookahead

    frame = market(seed=1, tickers=("AAA", "BBB"), days=300)
    with pytest.raises(TrainingError, match="look-ahead detected.*roc_1"):
        check_no_lookahead(frame, features.default_spec(), dt.date(2020, 9, 1))


def test_train_refuses_a_leaky_feature_before_fitting(leaky, random_walk, settings_for):
    with pytest.raises(TrainingError, match="look-ahead detected.*roc_1") as caught:
        api.train(settings_for(random_walk))
    assert caught.value.exit_code == 1
    assert not list(Path("models").glob("*.bin"))


def test_the_look_ahead_check_is_skipped_only_when_the_caller_asks(leaky):
    """build_dataset checks the spec by default; a caller that checked this spec on this
    data already (each backtest step after the first) passes check_lookahead=False."""
    from marketpredictor_train.dataset import build_dataset

    frame = market(seed=1, tickers=("AAA", "BBB"), days=300)
    kwargs = {"horizon": 1, "dead_band": 0.0, "backtest_months": 2, "purge_gap": 1}
    with pytest.raises(TrainingError, match="look-ahead detected.*roc_1"):
        build_dataset(frame, features.default_spec(), **kwargs)
    dataset = build_dataset(frame, features.default_spec(), check_lookahead=False, **kwargs)
    assert dataset.train.height > 0 and dataset.backtest.height > 0


def test_backtest_refuses_a_leaky_feature_before_any_step_is_fitted(
    leaky, random_walk, settings_for, tmp_path
):
    """The backtest runs the look-ahead check once, on its first step's data, before any
    worker starts: the steps skip it, so this check is the one that guards them."""
    with pytest.raises(TrainingError, match="look-ahead detected.*roc_1") as caught:
        api.backtest(settings_for(random_walk), cache_dir=tmp_path / "cache", workers=1)
    assert caught.value.exit_code == 1
    assert not list((tmp_path / "cache").rglob("*.npz"))


@pytest.mark.slow
def test_an_unguarded_leak_scores_near_100_percent_where_honesty_scores_50(
    leaky, monkeypatch, random_walk, random_walk_run, settings_for
):
    """Why the guard exists: with it switched off, the pipeline's own split and labels
    let tomorrow's close through and a random walk looks perfectly predictable. The
    honest run on the same data stays near 50%."""
    from marketpredictor_train.dataset import guards

    monkeypatch.setattr(guards, "check_no_lookahead", lambda *a, **k: None)
    leaked = api.train(settings_for(random_walk, dry_run=True))
    _, honest = random_walk_run
    assert leaked.metrics["accuracy"] > 0.9
    assert abs(honest.metrics["accuracy"] - 0.5) < 0.06
    assert any("far above what honest" in w for w in leaked.warnings)


def _cut(frame: pl.DataFrame, horizon: int):
    """The cut of ``frame`` with purge gap ``horizon`` and 3 backtest months."""
    from marketpredictor_train.dataset import cut_dataset

    return cut_dataset(
        frame,
        features.default_spec(),
        horizon=horizon,
        dead_band=0.0,
        backtest_months=3,
        purge_gap=horizon,
    )


def _with_a_gap_at_the_split(frame: pl.DataFrame, horizon: int) -> tuple[pl.DataFrame, object]:
    """``frame`` with BBB missing 10 trading days around the end of the training data of
    its :func:`_cut`, and that cut's last training date."""
    calendar = frame.get_column("date").unique().sort().to_list()
    train_end = _cut(frame, horizon).window.train_end
    end = calendar.index(train_end)
    gap = calendar[end - 4 : end + 6]
    return frame.filter(~((pl.col("ticker") == "BBB") & pl.col("date").is_in(gap))), train_end


def test_training_rows_whose_label_reaches_into_the_backtest_are_purged():
    """A ticker with missing days reaches further in `horizon` of its own rows than the
    market calendar's purge gap: the cut leaves those training rows out, and says so."""
    from structlog.testing import capture_logs

    from marketpredictor_train.dataset import labelled_features

    horizon = 5
    gappy, _ = _with_a_gap_at_the_split(market(seed=3, tickers=("AAA", "BBB"), days=420), horizon)
    with capture_logs() as logs:
        purged = _cut(gappy, horizon)
    labelled = labelled_features(gappy, features.default_spec(), horizon=horizon)
    unpurged = labelled.filter(pl.col("date") <= purged.window.train_end)
    assert purged.train.height < unpurged.height
    label_end = gappy.sort("ticker", "date").with_columns(
        pl.col("date").shift(-horizon).over("ticker").alias("label_end")
    )
    ends = purged.train.join(label_end, on=["ticker", "date"]).get_column("label_end")
    assert ends.max() < purged.window.backtest_start
    said = [e for e in logs if e["event"].startswith("Purged training rows")]
    assert [e["rows"] for e in said] == [unpurged.height - purged.train.height]


def test_a_broken_split_stops_the_run():
    from marketpredictor_train.dataset import cut_dataset
    from marketpredictor_train.dataset.guards import check_split

    frame = market(seed=3, tickers=("AAA",), days=420)
    dataset = cut_dataset(
        frame,
        features.default_spec(),
        horizon=1,
        dead_band=0.0,
        backtest_months=3,
        purge_gap=1,
    )
    check_split(dataset)
    overlapping = dataclasses.replace(
        dataset, train=pl.concat([dataset.train, dataset.backtest.head(5).drop("forward_return")])
    )
    with pytest.raises(TrainingError, match="chronological split is broken"):
        check_split(overlapping)


@pytest.mark.slow
def test_train_and_optimize_see_the_same_rows_when_the_guard_drops_some(cli, tmp_path):
    """Both commands get their rows from one guarded build: with a ticker whose missing
    days make the purge drop training rows, `train` and `optimize` still report the same
    training rows, and fewer than the unpurged training part has."""
    import json

    from marketpredictor_train.dataset import labelled_features

    horizon = 5
    frame = market(seed=5, tickers=("AAA", "BBB", "CCC"), days=520)
    gappy, train_end = _with_a_gap_at_the_split(frame, horizon)
    source = tmp_path / "gappy.parquet"
    gappy.write_parquet(source)
    unguarded = labelled_features(gappy, features.default_spec(), horizon=horizon).filter(
        pl.col("date") <= train_end
    )
    common = ("--source", source, "--horizon", horizon, "--backtest-months", 3, "--seed", 1)
    trained = cli("train", *common, "--dry-run", "--output-json", tmp_path / "train.json")
    assert trained.exit_code in (0, 2), trained.output
    tuned = cli(
        "optimize", *common, "--trials", 1, "--cv-folds", 2, "--output-json", tmp_path / "opt.json"
    )
    assert tuned.exit_code == 0, tuned.output
    n_train = json.loads((tmp_path / "train.json").read_text())["n_train"]
    n_tuned = json.loads((tmp_path / "opt.json").read_text())["n_train"]
    assert n_train == n_tuned < unguarded.height
