"""Fixtures for the feature tests: the real sample prices shipped with bokeh-sampledata
(AAPL, GOOG, IBM, MSFT 2000-2013, unadjusted) and small seeded synthetic OHLCV."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from marketpredictor_train.testing.synthetic import synthetic_ohlcv

OHLCV = ("open", "high", "low", "close", "volume")


def _sample_path() -> Path:
    import bokeh_sampledata

    return Path(bokeh_sampledata.__file__).parent / "_data" / "stocks.csv.gz"


@pytest.fixture(scope="session")
def sample_ohlcv() -> pl.DataFrame:
    """Real daily OHLCV of the four tickers with a long history, in the OHLCV contract shape."""
    raw = pl.read_csv(_sample_path(), try_parse_dates=True)
    return (
        raw.filter(pl.col("Ticker").is_in(["AAPL", "GOOG", "IBM", "MSFT"]))
        .select(
            pl.col("Ticker").alias("ticker"),
            pl.col("Date").cast(pl.Date).alias("date"),
            *(pl.col(c.capitalize()).cast(pl.Float64).alias(c) for c in OHLCV),
        )
        .sort("ticker", "date")
    )


@pytest.fixture
def small_ohlcv() -> pl.DataFrame:
    return synthetic_ohlcv(3, 300, seed=7)
