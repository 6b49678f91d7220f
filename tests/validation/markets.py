"""Seeded synthetic markets: a pure random walk (nothing to learn) and one with a planted,
learnable signal, in the OHLCV shape of `--source <path>` files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

TICKERS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF")
DAYS = 800  # a bit over three years of business days: training + 6-month backtest
START = dt.date(2020, 1, 1)
# Thresholds every model clears, so promotion is decided by the champion rule alone.
LOW_BAR = {"min_accuracy": 0.0, "min_precision": 0.0, "min_recall": 0.0, "min_f1": 0.0}
LOW_BAR_FLAGS = tuple(x for name in LOW_BAR for x in ("--" + name.replace("_", "-"), "0"))


def business_days(n: int, start: dt.date = START) -> pl.Series:
    dates = pl.date_range(start, start + dt.timedelta(days=n * 2), "1d", eager=True)
    return dates.filter(dates.dt.weekday() <= 5).head(n)


def market(
    *,
    seed: int,
    signal: float = 0.0,
    signal_from: int = 0,
    tickers: tuple[str, ...] = TICKERS,
    days: int = DAYS,
) -> pl.DataFrame:
    """Daily OHLCV per ticker. Volumes are i.i.d. log-normal; each next-day move has a
    random size, and its direction is up when today's volume is above the median with
    probability ``0.5 + signal`` (a pattern the volume-ratio feature can see), from row
    ``signal_from`` on; ``signal=0`` is a pure random walk."""
    rng = np.random.default_rng(seed)
    dates = business_days(days)
    frames = []
    for ticker in tickers:
        volume = np.exp(rng.normal(13.0, 0.5, days))
        high_volume = volume > np.exp(13.0)
        follow = rng.random(days) < 0.5 + signal
        planted = np.where(follow, high_volume, ~high_volume)
        coin = rng.random(days) < 0.5
        up = np.where(np.arange(days) >= signal_from, planted, coin)
        size = np.abs(rng.normal(0.0, 0.012, days)) + 1e-4
        # the move from day t-1 to t is decided by day t-1's volume
        step = np.concatenate([[0.0], np.where(up[:-1], size[1:], -size[1:])])
        close = 50.0 * np.exp(np.cumsum(step))
        open_ = np.concatenate([[close[0]], close[:-1]]) * np.exp(rng.normal(0, 0.002, days))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.006, days))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.006, days))
        frames.append(
            pl.DataFrame(
                {
                    "date": dates,
                    "ticker": ticker,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": np.round(volume),
                }
            )
        )
    return pl.concat(frames)


def write(frame: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    else:
        frame.write_csv(path)
    return path


SMALL = {"tickers": TICKERS[:4], "days": 560}
