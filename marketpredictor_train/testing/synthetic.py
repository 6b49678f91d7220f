"""Seeded synthetic daily OHLCV in the OHLCV contract shape, for tests, benchmarks and
trying mptrain without market data (a random walk: no signal to find)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl


def synthetic_ohlcv(tickers: int, days: int, *, seed: int = 0) -> pl.DataFrame:
    """``tickers`` x ``days`` weekday bars from 2000-01-03: a geometric random walk per
    ticker (its own price level, drift and volatility), open near the close, high/low
    around both, log-normal volume. Tickers are ``T000``, ``T001``, ...; rows in
    (ticker, date) order."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    n = tickers * days
    start = np.repeat(rng.uniform(5.0, 500.0, tickers), days)
    drift = np.repeat(rng.normal(0.0003, 0.0005, tickers), days)
    vol = np.repeat(rng.uniform(0.008, 0.035, tickers), days)
    steps = (drift + vol * rng.standard_normal(n)).reshape(tickers, days)
    close = start * np.exp(np.cumsum(steps, axis=1).ravel())
    open_ = close * (1.0 + 0.3 * vol * rng.standard_normal(n))
    high = np.maximum(open_, close) * (1.0 + vol * rng.uniform(0.05, 0.8, n))
    low = np.minimum(open_, close) * (1.0 - vol * rng.uniform(0.05, 0.8, n))
    volume = np.round(np.repeat(rng.uniform(1e5, 5e7, tickers), days) * rng.lognormal(0, 0.4, n))
    dates = pl.date_range(pl.date(2000, 1, 3), pl.date(2100, 1, 1), "1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5).head(days)
    width = max(3, len(str(tickers - 1)))
    return pl.DataFrame(
        {
            "ticker": np.repeat([f"T{i:0{width}d}" for i in range(tickers)], days),
            "date": pl.concat([dates] * tickers),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )
