"""Trend indicators: simple and exponential moving averages, ADX with +DI and -DI.

Each function maps one ticker's price expressions (in date order) to indicator expressions
with TA-Lib's definitions, seeds and warm-up lengths; rows before the warm-up are null.
"""

from __future__ import annotations

import polars as pl

from marketpredictor_train.features._smoothing import ema, null_before, position, seeded_ewm
from marketpredictor_train.features.volatility import true_range


def sma(close: pl.Expr, length: int) -> pl.Expr:
    """Simple moving average of the close; first value at row ``length - 1``."""
    return close.rolling_mean(length)


def exponential_ma(close: pl.Expr, length: int) -> pl.Expr:
    """TA-Lib's EMA of the close, seeded with the SMA of the first ``length`` closes."""
    return ema(close, length)


def _wilder_sum_ratio_base(x: pl.Expr, length: int) -> pl.Expr:
    """Wilder's running sum ``S[t] = S[t-1] - S[t-1] / n + x[t]``, scaled by ``1 / n``.

    TA-Lib's +DI/-DI/ADX start the sum with the ``n - 1`` values on rows 1..n-1 and emit the
    first value on row ``n``. Dividing by ``n`` turns the sum into an RMA (alpha = 1 / n)
    seeded with ``sum(x[1..n-1]) / n``; the scale cancels in every ratio built from it.
    """
    seed = x.rolling_sum(length - 1) / length
    return seeded_ewm(x, 1.0 / length, length - 1, seed)


def directional(
    high: pl.Expr, low: pl.Expr, close: pl.Expr, length: int
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Wilder's +DI, -DI (first value at row ``length``) and ADX (row ``2 * length - 1``),
    all in [0, 100], as TA-Lib's PLUS_DI, MINUS_DI and ADX."""
    up = high.diff()
    down = -low.diff()
    plus_dm = pl.when((up > down) & (up > 0.0)).then(up).otherwise(0.0)
    minus_dm = pl.when((down > up) & (down > 0.0)).then(down).otherwise(0.0)
    tr = _wilder_sum_ratio_base(true_range(high, low, close), length)
    plus_sm = _wilder_sum_ratio_base(plus_dm, length)
    minus_sm = _wilder_sum_ratio_base(minus_dm, length)
    # TA-Lib reports 0 for a window without any range.
    plus_di = null_before(pl.when(tr == 0.0).then(0.0).otherwise(100.0 * plus_sm / tr), length)
    minus_di = null_before(pl.when(tr == 0.0).then(0.0).otherwise(100.0 * minus_sm / tr), length)
    di_sum = plus_di + minus_di
    # Where both DIs are 0 TA-Lib adds nothing to the ADX seed and leaves the running ADX
    # unchanged; a null DX skipped by the smoothing (ignore_nulls) does the same.
    dx = pl.when(di_sum != 0.0).then(100.0 * (plus_di - minus_di).abs() / di_sum)
    seed_at = 2 * length - 1
    i = position()
    adx_input = (
        pl.when(i == seed_at)
        .then(dx.fill_null(0.0).rolling_mean(length))
        .when(i > seed_at)
        .then(dx)
    )
    adx = adx_input.ewm_mean(alpha=1.0 / length, adjust=False, ignore_nulls=True)
    return plus_di, minus_di, null_before(adx.forward_fill(), seed_at)
