"""Trend indicators: Wilder's directional movement (+DI, -DI, ADX); SMA and EMA are built
from the shared blocks in ``_core`` (how they are staged: see ``catalog``)."""

from __future__ import annotations

import polars as pl


def directional_movement(
    high: pl.Expr, low: pl.Expr, prev_high: pl.Expr, prev_low: pl.Expr
) -> tuple[pl.Expr, pl.Expr]:
    """Wilder's +DM and -DM: the larger of the high's up-move and the low's down-move
    counts, the other is 0 (both 0 on a ticker's first row)."""
    up = high - prev_high
    down = prev_low - low
    plus_dm = pl.when((up > down) & (up > 0.0)).then(up).otherwise(0.0)
    minus_dm = pl.when((down > up) & (down > 0.0)).then(down).otherwise(0.0)
    return plus_dm, minus_dm


def wilder_sum_scale(length: int) -> int:
    """The divisor that turns Wilder's running sum, as TA-Lib's +DI/-DI/ADX use it, into an
    RMA.

    TA-Lib starts the sum with the ``n - 1`` values at positions 1..n-1, then updates
    ``S[t] = S[t-1] - S[t-1] / n + x[t]`` and reports from position ``n``. Divided by ``n``
    that is an RMA (alpha = 1 / n) seeded at position ``n - 1`` with that first sum over
    ``n``; only ratios of such sums are reported, so the scale cancels.
    """
    return length


def directional_index(dm_sum: pl.Expr, tr_sum: pl.Expr) -> pl.Expr:
    """+DI or -DI in [0, 100]; 0 for a window without any range, as TA-Lib reports."""
    return pl.when(tr_sum == 0.0).then(0.0).otherwise(100.0 * dm_sum / tr_sum)


def directional_movement_index(plus_di: pl.Expr, minus_di: pl.Expr) -> pl.Expr:
    """DX in [0, 100]; null where both DIs are 0, a row TA-Lib leaves out of the ADX: it
    counts 0 towards the ADX seed and afterwards keeps the ADX unchanged."""
    total = plus_di + minus_di
    return pl.when(total != 0.0).then(100.0 * (plus_di - minus_di).abs() / total)
