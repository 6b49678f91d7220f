"""What a train keeps of its prices while it fits (pipelines.common.prices_for_validation):
only the close prices validation reads, from where its returns and the production model's
unseen rows need them, unless the production model must rebuild its features from every
column. Validating on what is kept gives what validating on every price gives."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from marketpredictor_train.config import load_settings
from marketpredictor_train.models.registry import get_model_type
from marketpredictor_train.pipelines import train as train_pipeline
from marketpredictor_train.pipelines.common import (
    SCORING_PRICE_COLUMNS,
    prepare_data,
    prices_for_validation,
)
from marketpredictor_train.progress import StepTimer
from marketpredictor_train.store import ModelStore
from marketpredictor_train.validation.backtest import price_context, rows_from
from tests.dataset.test_table_pieces import _awkward_market
from tests.validation.markets import market, write


@pytest.mark.parametrize("horizon", [1, 3, 5])
def test_the_returns_read_from_the_kept_rows_are_those_of_every_row(horizon):
    prices = _awkward_market().sort("ticker", "date")
    dates = prices.get_column("date").unique().sort()
    first = dates[len(dates) - 60]
    kept = rows_from(prices, first, horizon)
    assert kept.height < prices.height / 3
    rows = prices.filter(pl.col("date") >= first).select("ticker", "date")
    assert price_context(kept, rows, horizon).equals(price_context(prices, rows, horizon))
    # each ticker keeps its rows from `first` on and the `horizon` rows before them; one
    # that stopped trading before `first` keeps at most `horizon` rows of its end
    stopped = 0
    for (ticker,), own in prices.group_by("ticker"):
        mine = kept.filter(pl.col("ticker") == ticker)
        at = int(np.searchsorted(own.get_column("date").to_numpy(), np.datetime64(first)))
        if at == own.height:
            stopped += 1
            assert mine.height <= horizon
            continue
        assert mine.equals(own.slice(max(0, at - horizon)))
    assert stopped == 1


def _settings(tmp_path, source, **overrides):
    return load_settings(
        source=str(source),
        mlflow=False,
        calibration="none",
        models_dir=tmp_path / "models",
        cache_dir=tmp_path / "cache",
        **overrides,
    )


@pytest.fixture
def weekly(tmp_path):
    """A production model trained on the data up to three months ago, and this week's
    data: the production model's last training date is before the new backtest."""
    full = market(seed=11)
    dates = full.get_column("date").unique().sort()
    early = write(full.filter(pl.col("date") <= dates[-60]), tmp_path / "early.parquet")
    now = write(full, tmp_path / "now.parquet")
    result = train_pipeline.train(_settings(tmp_path, early, force=True))
    assert result.promoted
    return tmp_path, now


def test_with_a_production_model_of_the_same_features_only_the_closes_are_kept(weekly):
    tmp_path, now = weekly
    settings = _settings(tmp_path, now)
    loaded, dataset = prepare_data(settings, StepTimer(), None)
    store = ModelStore(settings.models_dir)
    kept = prices_for_validation(loaded, dataset, store, settings.horizon)
    assert tuple(kept.frame.columns) == SCORING_PRICE_COLUMNS
    assert kept.frame.height < loaded.frame.height / 2
    manifest = store.production().manifest
    train_end = dt.date.fromisoformat(manifest["data_window"]["train_end"])
    assert train_end < dataset.window.backtest_start
    assert kept.frame.get_column("date").min() <= train_end  # its unseen rows count from there

    # the new model validated on what is kept: the same report and the same decision
    xgb = get_model_type("xgb")
    model, _ = train_pipeline.fit_model(settings, xgb, dict(xgb.default_params), "cpu", dataset)
    on_all = train_pipeline._validate(settings, model, None, dataset, loaded, store)
    on_kept = train_pipeline._validate(settings, model, None, dataset, kept, store)
    assert on_all.report.comparison is not None and on_all.report.comparison.comparable
    assert on_kept.report.to_dict() == on_all.report.to_dict()
    assert on_kept.decision == on_all.decision


def test_a_production_model_of_other_features_keeps_every_price(weekly):
    tmp_path, now = weekly
    settings = _settings(tmp_path, now, features=[{"kind": "rsi", "length": 9}])
    loaded, dataset = prepare_data(settings, StepTimer(), None)
    store = ModelStore(settings.models_dir)
    assert prices_for_validation(loaded, dataset, store, settings.horizon) is loaded


def test_without_a_production_model_the_closes_from_the_backtest_are_kept(tmp_path):
    now = write(market(seed=12), tmp_path / "now.parquet")
    settings = _settings(tmp_path, now, horizon=3)
    loaded, dataset = prepare_data(settings, StepTimer(), None)
    kept = prices_for_validation(loaded, dataset, ModelStore(settings.models_dir), 3)
    assert tuple(kept.frame.columns) == SCORING_PRICE_COLUMNS
    start = dataset.window.backtest_start
    before = kept.frame.filter(pl.col("date") < start)
    assert before.group_by("ticker").len().get_column("len").max() == 3
    assert kept.frame.filter(pl.col("date") >= start).equals(
        loaded.frame.select(SCORING_PRICE_COLUMNS).filter(pl.col("date") >= start)
    )


def test_an_unreadable_production_model_keeps_every_price(tmp_path):
    now = write(market(seed=12), tmp_path / "now.parquet")
    settings = _settings(tmp_path, now)
    settings.models_dir.mkdir(parents=True)
    (settings.models_dir / "prod_model.bin").write_bytes(b"not a model")
    loaded, dataset = prepare_data(settings, StepTimer(), None)
    store = ModelStore(settings.models_dir)
    assert prices_for_validation(loaded, dataset, store, settings.horizon) is loaded


def test_a_production_model_that_changed_during_the_run_is_not_compared_on_kept_prices(weekly):
    """Another run promoted a model of other features while this one fitted on the closes
    it kept: that model cannot rebuild its features from them, which is a warning (the
    production model is not compared), never a crash."""
    import numpy as np

    from marketpredictor_train.pipelines.common import score_champion

    tmp_path, now = weekly  # production has the default features
    settings = _settings(tmp_path, now, features=[{"kind": "rsi", "length": 9}])
    loaded, dataset = prepare_data(settings, StepTimer(), None)
    kept = loaded.frame.select(SCORING_PRICE_COLUMNS)  # as cut for a production of rsi
    proba = np.full(dataset.backtest.height, 0.5)
    champion = score_champion(
        settings,
        ModelStore(settings.models_dir),
        kept,
        dataset.backtest,
        proba,
        horizon=settings.horizon,
        rows_spec_hash=dataset.spec.hash,
    )
    assert champion.comparison is None
    (warning,) = champion.warnings
    assert warning.startswith("The production model could not be scored (it has other features")
    assert "only the close prices were kept" in warning and "promoted by another run" in warning
