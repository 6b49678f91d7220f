"""No look-ahead and no mixing: a feature on a date depends only on the same ticker's rows
up to that date, exactly (not merely to rounding), and warm-up rows are null."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketpredictor_train.features import FeatureSpec, Indicator, build_features, default_spec
from marketpredictor_train.features.pipeline import outputs

# the default set plus other parameters, so every code path is truncated and mixed
SPEC = FeatureSpec(
    (
        *default_spec().indicators,
        Indicator.create("adx", length=5),
        Indicator.create("macd", fast=3, slow=10, signal=16),
        Indicator.create("stoch", k=5, smooth_k=1, d=4),
        Indicator.create("bbands", length=10, mult=1.5),
        Indicator.create("obv", length=3),
        Indicator.create("vwap", length=1),
    )
)

FIRST, LAST = dt.date(2000, 3, 1), dt.date(2013, 12, 31)
cut_dates = st.dates(min_value=FIRST, max_value=LAST)


@pytest.fixture(scope="module")
def full(sample_ohlcv):
    return build_features(sample_ohlcv, SPEC)


@pytest.mark.slow  # 30 generated sets of cut dates, each a feature build
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cuts=st.fixed_dictionaries({t: cut_dates for t in ("AAPL", "GOOG", "IBM", "MSFT")}))
def test_features_on_data_cut_at_any_dates_equal_the_full_run_up_to_the_cuts(
    sample_ohlcv, full, cuts
):
    """Each ticker is cut at its own date (as if its history ended there); every value up
    to the cut is bit-for-bit the value computed with the whole history."""
    cut_of = pl.col("ticker").replace_strict(cuts, return_dtype=pl.Date)
    truncated = build_features(sample_ohlcv.filter(pl.col("date") <= cut_of), SPEC)
    expected = full.filter(pl.col("date") <= cut_of)
    assert truncated.equals(expected)


def test_row_order_does_not_matter(sample_ohlcv, full):
    shuffled = sample_ohlcv.sample(fraction=1.0, shuffle=True, seed=11)
    assert build_features(shuffled, SPEC).equals(full)


def test_a_ticker_alone_gets_the_same_features_as_among_others(sample_ohlcv, full):
    for ticker in ("AAPL", "GOOG", "IBM", "MSFT"):
        alone = build_features(sample_ohlcv.filter(pl.col("ticker") == ticker), SPEC)
        assert alone.equals(full.filter(pl.col("ticker") == ticker)), ticker


def test_other_tickers_data_does_not_move_a_tickers_features(sample_ohlcv, full):
    """Change every price of the tickers sorted before and after IBM, and rename them so
    IBM's neighbours change too: IBM's features stay exactly the same."""
    changed = sample_ohlcv.with_columns(
        pl.when(pl.col("ticker") != "IBM").then(pl.col(c) * 7.3 + 1.0).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close", "volume")
    ).with_columns(pl.col("ticker").replace({"AAPL": "ZZZ", "MSFT": "AAA"}))
    again = build_features(changed, SPEC).filter(pl.col("ticker") == "IBM")
    assert again.equals(full.filter(pl.col("ticker") == "IBM"))


def test_interleaved_tickers_with_gaps_match_each_ticker_alone(sample_ohlcv):
    """Tickers with different calendars (GOOG listed in 2004, holes in MSFT) interleaved
    row by row give each ticker the features of its own rows only."""
    holed = sample_ohlcv.filter(
        (pl.col("ticker") != "MSFT") | (pl.int_range(pl.len()).over("ticker") % 7 != 3)
    )
    interleaved = holed.sort("date", "ticker")
    together = build_features(interleaved, SPEC)
    for ticker in ("GOOG", "MSFT"):
        alone = build_features(holed.filter(pl.col("ticker") == ticker), SPEC)
        assert alone.equals(together.filter(pl.col("ticker") == ticker)), ticker


def test_warmup_rows_are_null_and_every_later_row_is_set(full):
    """On real data each feature is null on exactly its first `warmup` rows per ticker:
    never 0 there, never missing after."""
    row = pl.int_range(pl.len()).over("ticker")
    for column in outputs(SPEC):
        nulls = full.select(
            (pl.col(column.name).is_null() & (row < column.warmup)).sum().alias("warm"),
            (pl.col(column.name).is_null() & (row >= column.warmup)).sum().alias("late"),
        ).row(0)
        assert nulls == (4 * column.warmup, 0), column.name
