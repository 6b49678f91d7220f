"""Small, seeded, realistic OHLCV frames and files for the data-layer tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest


def make_ohlcv(
    tickers: tuple[str, ...] = ("AAA", "BBB"),
    days: int = 60,
    start: dt.date = dt.date(2023, 1, 2),
    seed: int = 7,
) -> pl.DataFrame:
    """Business-day bars of a random walk per ticker, consistent (low <= open, close <= high)."""
    rng = np.random.default_rng(seed)
    dates = pl.date_range(start, start + dt.timedelta(days=days * 2), "1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5).head(days)
    frames = []
    for ticker in tickers:
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
        open_ = close * np.exp(rng.normal(0, 0.005, days))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, days))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, days))
        frames.append(
            pl.DataFrame(
                {
                    "date": dates,
                    "ticker": ticker,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.integers(1_000, 100_000, days).astype(float),
                }
            )
        )
    return pl.concat(frames)


@pytest.fixture
def ohlcv() -> pl.DataFrame:
    return make_ohlcv()


@pytest.fixture
def write_csv(tmp_path: Path):
    """Write a frame as CSV (dates as ISO text) and return the path."""

    def write(frame: pl.DataFrame, name: str = "prices.csv") -> Path:
        path = tmp_path / "input" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_csv(path)
        return path

    return write
