"""Volatility indicators: true range and ATR, Bollinger Bands, rolling standard deviation.

Each function maps one ticker's price expressions (in date order) to indicator expressions
with TA-Lib's definitions and warm-up lengths; rows before the warm-up are null.
"""

from __future__ import annotations

import polars as pl

from marketpredictor_train.features._smoothing import wilder


def true_range(high: pl.Expr, low: pl.Expr, close: pl.Expr) -> pl.Expr:
    """Wilder's true range; null on the first row, which has no previous close."""
    prev_close = close.shift(1)
    widest = pl.max_horizontal(high - low, (high - prev_close).abs(), (low - prev_close).abs())
    # max_horizontal skips nulls, so the first row would silently become high - low.
    return pl.when(prev_close.is_not_null()).then(widest)


def atr(high: pl.Expr, low: pl.Expr, close: pl.Expr, length: int) -> pl.Expr:
    """Average True Range (Wilder smoothing seeded with the SMA of the first ``length`` true
    ranges); first value at row ``length``."""
    return wilder(true_range(high, low, close), length, first_valid=1)


def stddev(close: pl.Expr, length: int) -> pl.Expr:
    """Population standard deviation (ddof=0, as TA-Lib's STDDEV) over ``length`` rows."""
    return close.rolling_std(length, ddof=0)


def bollinger(
    close: pl.Expr, length: int, mult: float
) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """Bollinger Bands: upper, middle (SMA), lower at ``mult`` population standard
    deviations, then %B (where the close sits between the bands, 0 at the lower and 1 at the
    upper band) and bandwidth ((upper - lower) / middle)."""
    middle = close.rolling_mean(length)
    width = mult * stddev(close, length)
    upper = middle + width
    lower = middle - width
    percent_b = (close - lower) / (upper - lower)
    bandwidth = (upper - lower) / middle
    return upper, middle, lower, percent_b, bandwidth
