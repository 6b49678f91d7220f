"""Momentum indicators: RSI, MACD, Stochastic oscillator and rate of change.

Each function maps one ticker's price expressions (in date order) to indicator expressions
with TA-Lib's definitions, seeds and warm-up lengths; rows before the warm-up are null.
"""

from __future__ import annotations

import polars as pl

from marketpredictor_train.features._smoothing import ema, null_before, wilder


def rsi(close: pl.Expr, length: int) -> pl.Expr:
    """Wilder's Relative Strength Index in [0, 100]; first value at row ``length``."""
    change = close.diff()
    avg_gain = wilder(change.clip(lower_bound=0.0), length, first_valid=1)
    avg_loss = wilder((-change).clip(lower_bound=0.0), length, first_valid=1)
    total = avg_gain + avg_loss
    # A window without any move is neutral-less in Wilder's formula; TA-Lib reports 0 there.
    return pl.when(total == 0.0).then(0.0).otherwise(100.0 * avg_gain / total)


def macd(close: pl.Expr, fast: int, slow: int, signal: int) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """MACD line, signal line and histogram, in price units.

    TA-Lib starts both EMAs on the same row, ``slow - 1``, the fast one seeded with the SMA of
    its last ``fast`` closes there (not at row ``fast - 1``); matching that makes the values
    equal to TA-Lib's from the first row instead of converging to them. All three outputs
    start where the signal line does, row ``slow + signal - 2``.
    """
    seed_at = slow - 1
    line = ema(close, fast, seed_at=seed_at) - ema(close, slow, seed_at=seed_at)
    signal_line = ema(line, signal, first_valid=seed_at)
    first = seed_at + signal - 1
    return null_before(line, first), signal_line, line - signal_line


def stochastic(
    high: pl.Expr, low: pl.Expr, close: pl.Expr, k: int, smooth_k: int, d: int
) -> tuple[pl.Expr, pl.Expr]:
    """Slow Stochastic %K (the SMA over ``smooth_k`` of the raw %K over ``k`` rows) and %D
    (the SMA of %K over ``d``), in [0, 100]; both start at row ``k + smooth_k + d - 3`` as
    in TA-Lib's STOCH with SMA smoothing."""
    highest = high.rolling_max(k)
    lowest = low.rolling_min(k)
    spread = highest - lowest
    # A flat window has no position inside its range; TA-Lib reports 0 there.
    raw_k = pl.when(spread == 0.0).then(0.0).otherwise(100.0 * (close - lowest) / spread)
    slow_k = raw_k.rolling_mean(smooth_k)
    slow_d = slow_k.rolling_mean(d)
    return null_before(slow_k, k + smooth_k + d - 3), slow_d


def roc(close: pl.Expr, length: int) -> pl.Expr:
    """Rate of change in percent, ``100 * (close / close[length rows ago] - 1)``."""
    return (close / close.shift(length) - 1.0) * 100.0
