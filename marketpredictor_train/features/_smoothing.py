"""Moving-average building blocks shared by the indicator families.

Every function here returns an expression meant to be evaluated over one ticker's rows in
date order (the pipeline applies ``.over("ticker")``); none of them looks at a later row.
"""

from __future__ import annotations

import polars as pl


def position() -> pl.Expr:
    """0-based row number within the current window (the ticker's row index by date)."""
    return pl.int_range(pl.len(), dtype=pl.Int64)


def null_before(expr: pl.Expr, first_valid: int) -> pl.Expr:
    """``expr`` with its first ``first_valid`` rows set to null (an indicator's warm-up)."""
    if first_valid <= 0:
        return expr
    return pl.when(position() >= first_valid).then(expr)


def seeded_ewm(x: pl.Expr, alpha: float, seed_at: int, seed: pl.Expr) -> pl.Expr:
    """Exponential smoothing ``y[t] = y[t-1] + alpha * (x[t] - y[t-1])`` started at row
    ``seed_at`` with ``y[seed_at] = seed[seed_at]``; null before it.

    This is how TA-Lib starts every recursive average (EMA, Wilder's RMA): the first value is
    a simple average of the window, not the first raw value. Polars' ``ewm_mean`` with
    ``adjust=False`` starts its recursion at the first non-null input, so nulling the rows
    before the seed and putting the seed value in its row reproduces TA-Lib exactly without a
    Python loop.
    """
    i = position()
    started = pl.when(i == seed_at).then(seed).when(i > seed_at).then(x)
    return started.ewm_mean(alpha=alpha, adjust=False)


def sma(x: pl.Expr, length: int) -> pl.Expr:
    """Simple moving average over the last ``length`` rows; null until the window is full."""
    return x.rolling_mean(length)


def ema(x: pl.Expr, length: int, *, first_valid: int = 0, seed_at: int | None = None) -> pl.Expr:
    """TA-Lib's EMA (k = 2 / (length + 1)), seeded with the SMA of the ``length`` values
    ending at ``seed_at`` (default: the first full window after ``first_valid``)."""
    if seed_at is None:
        seed_at = first_valid + length - 1
    return seeded_ewm(x, 2.0 / (length + 1), seed_at, x.rolling_mean(length))


def wilder(x: pl.Expr, length: int, *, first_valid: int = 0) -> pl.Expr:
    """Wilder's smoothing (RMA, alpha = 1 / length) seeded with the SMA of the first
    ``length`` valid values, as TA-Lib's RSI and ATR do."""
    return seeded_ewm(x, 1.0 / length, first_valid + length - 1, x.rolling_mean(length))
