"""Test doubles of the data layer: seeded OHLCV frames and Yahoo without the network."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl


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


class FakeYahoo:
    """Yahoo without the network: replaces only ``yfinance.Ticker.history`` (the one
    request per ticker), so the real ``yfinance.download`` assembles its MultiIndex
    frame, catches per-ticker errors and logs them exactly as it does online.

    Every ticker has a fixed random-walk history; ``history`` returns its bars in
    [start, end) with a timezone-aware index, as yfinance 1.x does. Behaviour per ticker:
    ``rate_limited[t] = n`` raises YFRateLimitError on the next n requests; ``unknown``
    tickers get Yahoo's 'possibly delisted' answer; ``nan_days[t]`` blanks some prices;
    ``scale[t]`` multiplies all prices (Yahoo re-adjusting history after a dividend).
    """

    def __init__(self, tz: str = "America/New_York") -> None:
        self.tz = tz
        self.calls: list[tuple[str, dt.date, dt.date]] = []
        self.rate_limited: dict[str, int] = {}
        self.unknown: set[str] = set()
        self.nan_days: dict[str, list[dt.date]] = {}
        self.scale: dict[str, float] = {}
        self.first_day: dict[str, dt.date] = {}
        self.broken = False

    def bars(self, ticker: str, start: dt.date, end: dt.date):
        import zlib

        import pandas as pd

        begin = max(start, self.first_day.get(ticker, dt.date(2010, 1, 1)))
        days = pd.bdate_range(begin, end - dt.timedelta(days=1))
        if len(days) == 0:
            return pd.DataFrame(columns=["Open", "High", "Low", "Close", "Volume"])
        # The walk is anchored at a fixed date, so any window of it is the same numbers.
        anchor = pd.bdate_range(dt.date(2010, 1, 1), days[-1])
        rng = np.random.default_rng(zlib.crc32(ticker.encode()))
        close = 40 * np.exp(np.cumsum(rng.normal(0, 0.01, len(anchor))))
        spread = rng.uniform(0.001, 0.01, len(anchor))
        frame = pd.DataFrame(
            {
                "Open": close * (1 - spread / 2),
                "High": close * (1 + spread),
                "Low": close * (1 - spread),
                "Close": close,
                "Volume": rng.integers(10_000, 1_000_000, len(anchor)),
            },
            index=anchor,
        ).loc[days]
        frame[["Open", "High", "Low", "Close"]] *= self.scale.get(ticker, 1.0)
        for day in self.nan_days.get(ticker, []):
            if pd.Timestamp(day) in frame.index:
                frame.loc[pd.Timestamp(day), ["Close", "High"]] = np.nan
        frame.index = pd.DatetimeIndex(frame.index).tz_localize(self.tz)
        frame.index.name = "Date"
        return frame

    def history(self, tk, *args, **kwargs):
        import types

        from yfinance import utils
        from yfinance.exceptions import YFRateLimitError

        ticker = tk.ticker
        start = dt.date.fromisoformat(str(kwargs["start"])[:10])
        end = dt.date.fromisoformat(str(kwargs["end"])[:10])
        self.calls.append((ticker, start, end))
        if self.broken:
            raise AssertionError(f"network used for {ticker} while it must not be")
        if self.rate_limited.get(ticker, 0) > 0:
            self.rate_limited[ticker] -= 1
            raise YFRateLimitError()
        if ticker in self.unknown:
            # What PriceHistory leaves behind for a symbol Yahoo does not know.
            tk._price_history = types.SimpleNamespace(
                _last_error=f"possibly delisted; no price data found  (1d {start} -> {end})"
            )
            return utils.empty_df()
        return self.bars(ticker, start, end)

    def requested(self, ticker: str) -> list[tuple[dt.date, dt.date]]:
        return [(s, e) for t, s, e in self.calls if t == ticker]
