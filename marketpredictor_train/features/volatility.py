"""Volatility indicators: true range (ATR), Bollinger Bands, rolling standard deviation,
with TA-Lib's definitions and warm-up lengths (how they are staged: see ``catalog``)."""

from __future__ import annotations

import polars as pl

from marketpredictor_train.features._core import ratio


def true_range(high: pl.Expr, low: pl.Expr, prev_close: pl.Expr) -> pl.Expr:
    """Wilder's true range; null on a ticker's first row, which has no previous close."""
    widest = pl.max_horizontal(high - low, (high - prev_close).abs(), (low - prev_close).abs())
    # max_horizontal skips nulls, so the first row would silently become high - low.
    return pl.when(prev_close.is_not_null()).then(widest)


def stddev(close: pl.Expr, length: int) -> pl.Expr:
    """Per ticker: population standard deviation (ddof=0, as TA-Lib's STDDEV)."""
    return close.rolling_std(length, ddof=0)


def bollinger_bands(middle: pl.Expr, std: pl.Expr, mult: float) -> tuple[pl.Expr, pl.Expr]:
    """Upper and lower Bollinger Band, ``mult`` population standard deviations around the
    middle band (the SMA)."""
    return middle + mult * std, middle - mult * std


def percent_b(close: pl.Expr, upper: pl.Expr, lower: pl.Expr) -> pl.Expr:
    """%B: where the close sits between the bands (0 at the lower, 1 at the upper band)."""
    return ratio(close - lower, upper - lower)


def bandwidth(upper: pl.Expr, lower: pl.Expr, middle: pl.Expr) -> pl.Expr:
    """Band width relative to the middle band (an SMA of positive prices),
    ``(upper - lower) / middle``."""
    return (upper - lower) / middle
