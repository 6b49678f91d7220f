"""Properties of validate_ohlcv over generated data: valid bars in any order pass and come
back sorted; one broken value anywhere is always caught and named by ticker and date."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketpredictor_train.data import OHLCV_COLUMNS, validate_ohlcv
from marketpredictor_train.errors import DataError
from tests.data.fakes import make_ohlcv

frames = st.builds(
    make_ohlcv,
    tickers=st.lists(
        st.sampled_from(["AAA", "BB", "C1", "BRK-B", "^GSPC"]), min_size=1, max_size=3, unique=True
    ).map(tuple),
    days=st.integers(min_value=1, max_value=30),
    start=st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2025, 1, 1)),
    seed=st.integers(min_value=0, max_value=10_000),
)


@settings(max_examples=40, deadline=None)
@given(frame=frames, shuffle_seed=st.integers(0, 1000))
def test_valid_bars_in_any_order_pass_and_come_back_sorted(frame, shuffle_seed):
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=shuffle_seed)
    result = validate_ohlcv(shuffled)
    assert tuple(result.columns) == OHLCV_COLUMNS
    assert result.drop("adj_close").equals(frame.sort("ticker", "date"))


BREAKAGES = {
    "nan close": ("close", float("nan")),
    "zero open": ("open", 0.0),
    "negative volume": ("volume", -1.0),
    "infinite low": ("low", float("-inf")),
    "high far below": ("high", 1e-6),
}


@settings(max_examples=40, deadline=None)
@given(frame=frames, pick=st.integers(min_value=0), breakage=st.sampled_from(sorted(BREAKAGES)))
def test_one_broken_value_is_always_named(frame, pick, breakage):
    column, value = BREAKAGES[breakage]
    row = pick % frame.height
    broken = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(column).alias(column)
    )
    ticker, day = frame.row(row, named=True)["ticker"], frame.row(row, named=True)["date"]
    with pytest.raises(DataError) as info:
        validate_ohlcv(broken)
    assert f"{ticker} {day}" in info.value.message
