"""Fixtures for the feature tests: the real sample prices shipped with bokeh-sampledata
(AAPL, GOOG, IBM, MSFT 2000-2013, unadjusted) and small seeded synthetic OHLCV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

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


def synthetic_ohlcv(tickers: int, days: int, seed: int = 7) -> pl.DataFrame:
    """Seeded random-walk OHLCV with realistic relations (low <= open, close <= high)."""
    rng = np.random.default_rng(seed)
    n = tickers * days
    start = rng.uniform(5.0, 500.0, tickers).repeat(days)
    steps = rng.normal(0.0003, 0.02, (tickers, days))
    close = start * np.exp(np.cumsum(steps, axis=1).ravel())
    open_ = close * (1.0 + rng.normal(0.0, 0.005, n))
    spread = close * rng.uniform(0.001, 0.03, n)
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    volume = rng.lognormal(13.0, 0.5, n).round()
    dates = pl.date_range(pl.date(2000, 1, 3), pl.date(2100, 1, 1), "1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5).head(days)
    return pl.DataFrame(
        {
            "ticker": np.repeat([f"T{i:03d}" for i in range(tickers)], days),
            "date": pl.concat([dates] * tickers),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )


@pytest.fixture
def small_ohlcv() -> pl.DataFrame:
    return synthetic_ohlcv(3, 300)
