"""yfinance's pandas frames to our Polars OHLCV: one canonical frame per ticker, with
Yahoo's broken bars left out.

Prices are split- and dividend-adjusted: ``yfinance.download(auto_adjust=True)`` scales
open/high/low/close by Yahoo's adjusted close / close of each day, so ``close`` is the
adjusted close (we also put it in ``adj_close``) and volume is split-adjusted as Yahoo
serves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from marketpredictor_train.data.schema import OHLCV_COLUMNS, describe_list

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

log = structlog.get_logger(__name__)


def frames_from_download(
    raw: pd.DataFrame | None, tickers: Sequence[str]
) -> dict[str, pl.DataFrame]:
    """Split yfinance.download's frame into one canonical frame per ticker with rows.

    Handles yfinance 1.x's shapes: MultiIndex columns (Price, Ticker) or (Ticker, Price),
    flat columns for one ticker, a naive or timezone-aware DatetimeIndex (the bar's date
    is its wall-clock date at the exchange), rows of NaN where a ticker had no bar.
    """
    import pandas as pd

    if raw is None or raw.empty:
        return {}
    frames: dict[str, pl.DataFrame] = {}
    columns = raw.columns
    if isinstance(columns, pd.MultiIndex):
        level = _ticker_level(columns, tickers)
        present = {str(t).upper(): t for t in columns.get_level_values(level).unique()}
        for ticker in tickers:
            key = present.get(ticker.upper())
            if key is None:
                continue
            part = raw.xs(key, axis=1, level=level)
            frame = _canonical(part, ticker)
            if frame is not None:
                frames[ticker] = frame
    elif len(tickers) == 1:
        frame = _canonical(raw, tickers[0])
        if frame is not None:
            frames[tickers[0]] = frame
    return frames


def _ticker_level(columns: pd.MultiIndex, tickers: Sequence[str]) -> int:
    names = [str(n).lower() if n is not None else "" for n in columns.names]
    if "ticker" in names:
        return names.index("ticker")
    wanted = {t.upper() for t in tickers}
    for level in range(columns.nlevels):
        if {str(v).upper() for v in columns.get_level_values(level)} & wanted:
            return level
    return columns.nlevels - 1


def _canonical(part: pd.DataFrame, ticker: str) -> pl.DataFrame | None:
    """One ticker's bars in our schema, Yahoo's bad bars left out (with a warning)."""
    import numpy as np
    import pandas as pd
    import polars as pl

    lower = {str(c).strip().lower(): c for c in part.columns}
    needed = ("open", "high", "low", "close", "volume")
    if any(n not in lower for n in needed):
        return None
    index = pd.DatetimeIndex(part.index)
    if index.tz is not None:
        index = index.tz_localize(None)
    values = {n: part[lower[n]].to_numpy(dtype="float64", na_value=np.nan) for n in needed}
    frame = pl.DataFrame(
        {
            "date": pl.Series(index.normalize().to_numpy()).dt.date(),
            "ticker": [ticker] * len(index),
            **values,
        }
    ).with_columns(
        pl.col("close").alias("adj_close"),
        pl.col("open", "high", "low", "close", "volume").fill_nan(None),
    )
    prices = [pl.col(c) for c in ("open", "high", "low", "close")]
    # Rows with no price at all are the union index of a batch, not bars.
    frame = frame.filter(~pl.all_horizontal([p.is_null() for p in prices]))
    frame = frame.unique("date", keep="last", maintain_order=True).sort("date")
    if frame.height == 0:
        return None
    frame = sanitize_bars(frame, ticker)
    if frame.height == 0:
        return None
    return frame.select(OHLCV_COLUMNS)


def sanitize_bars(frame: pl.DataFrame, ticker: str) -> pl.DataFrame:
    """Leave out Yahoo's broken bars (a missing price, <= 0, high below low, open or
    close outside [low, high], missing or negative volume) and say which. The user
    cannot fix Yahoo's data, and one bad day should not cost the whole ticker."""
    import polars as pl

    from marketpredictor_train.data.schema import OHLC_TOLERANCE as tol

    o, h, lo, c, v = (pl.col(n) for n in ("open", "high", "low", "close", "volume"))
    ok = (
        pl.all_horizontal([x.is_not_null() & x.is_finite() & (x > 0) for x in (o, h, lo, c)])
        & (h >= lo * (1 - tol))
        & (o <= h * (1 + tol))
        & (o >= lo * (1 - tol))
        & (c <= h * (1 + tol))
        & (c >= lo * (1 - tol))
        & v.is_not_null()
        & v.is_finite()
        & (v >= 0)
    ).fill_null(False)
    bad = frame.filter(~ok)
    if bad.height:
        log.warning(
            "leaving out broken Yahoo bars",
            ticker=ticker,
            rows=bad.height,
            dates=describe_list([str(d) for d in bad.get_column("date")], limit=5),
        )
        frame = frame.filter(ok)
    return frame
