"""Expression building blocks shared by the indicator families.

The pipeline evaluates features on the frame sorted by (ticker, date) and gives every row
its position within its ticker (the ``__pos`` column). Two kinds of expression follow:

* *per ticker* (marked so): state that runs along a ticker's history (cumulative sums,
  exponential smoothing, rolling standard deviation) or one value per ticker (the sum of
  its first window). The pipeline evaluates them with ``.over(ticker)``, so their
  arithmetic never sees another ticker.
* row-wise: everything else, including lags and rolling max/min, which only *select* rows;
  they are masked by position so a row never reads a row of the previous ticker. These
  run on whole columns, which is what makes the pipeline fast.

Both read only rows at or before the current one.
"""

from __future__ import annotations

import polars as pl

POSITION = "__pos"
TICKER_ID = "__ticker_id"


def ticker_id_column(ticker: pl.Expr) -> pl.Expr:
    """Row-wise on a frame sorted by ticker: a small integer per ticker, increasing with
    the row order. Partitioning by it is the same as by the ticker, only cheaper."""
    return ticker.rle_id().set_sorted()


def position_column(ticker_id: pl.Expr) -> pl.Expr:
    """Row-wise on a frame sorted by ticker: the 0-based row number within the ticker."""
    row = pl.int_range(pl.len(), dtype=pl.Int32)
    first_row = pl.when(ticker_id.ne_missing(ticker_id.shift(1))).then(row).forward_fill()
    return row - first_row


def position() -> pl.Expr:
    """The row's 0-based position within its ticker (the ``__pos`` column)."""
    return pl.col(POSITION)


def null_before(expr: pl.Expr, first_valid: int) -> pl.Expr:
    """``expr`` with the rows before position ``first_valid`` set to null (a warm-up)."""
    if first_valid <= 0:
        return expr
    return pl.when(position() >= first_valid).then(expr)


def lag(x: pl.Expr, periods: int) -> pl.Expr:
    """``x`` from ``periods`` rows earlier in the same ticker; null on its first rows."""
    return null_before(x.shift(periods), periods)


def ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """``numerator / denominator``, null where the denominator is 0: an undefined ratio is
    missing, never an infinity or a NaN that a model would read as a value."""
    return pl.when(denominator != 0.0).then(numerator / denominator)


def running_total(x: pl.Expr) -> pl.Expr:
    """Per ticker: the cumulative sum of ``x`` since the ticker's first row (a missing
    value, such as the first row's change, counts 0)."""
    return x.fill_null(0.0).cum_sum()


def window_total(total: pl.Expr, length: int) -> pl.Expr:
    """The sum of the last ``length`` values, from their per-ticker :func:`running_total`;
    null until the ticker has ``length`` rows. A rolling sum as a difference of running
    totals is exact per ticker (a whole-column rolling sum would carry rounding from the
    previous ticker) and one running total serves windows of every length."""
    i = position()
    return pl.when(i >= length).then(total - total.shift(length)).when(i == length - 1).then(total)


def short_window_mean(x: pl.Expr, length: int) -> pl.Expr:
    """The mean of the last ``length`` values of ``x`` from lags (for short windows, such as
    the Stochastic's 3-day smoothing); null while any of them is."""
    total = x
    for k in range(1, length):
        total = total + lag(x, k)
    return total / length


def window_sum_at(x: pl.Expr, start: int, length: int, *, mean: bool = False) -> pl.Expr:
    """Per ticker, one value for all its rows: the sum (or mean) of ``x`` over positions
    ``start .. start + length - 1`` (a missing value counts 0), the seed of TA-Lib's
    smoothings."""
    window = x.fill_null(0.0).slice(start, length)
    return window.mean() if mean else window.sum()


def seeded(x: pl.Expr, seed_at: int, seed: pl.Expr) -> pl.Expr:
    """The input of a seeded smoothing: ``seed`` on every row up to ``seed_at``, ``x``
    after. The recursion over it holds the seed until ``seed_at`` and then runs on ``x``
    exactly as if started there (the rows before are warm-up, masked afterwards), with no
    nulls to step over, which Polars' ``ewm_mean`` does markedly faster."""
    return pl.when(position() > seed_at).then(x).otherwise(seed)


def smooth(seeded_x: pl.Expr, alpha: float, *, skip_nulls: bool = False) -> pl.Expr:
    """Per ticker: ``y[t] = y[t-1] + alpha * (x[t] - y[t-1])`` over :func:`seeded` input,
    which is how TA-Lib starts every recursive average (EMA, Wilder's RMA): with the plain
    average of a first window. With ``skip_nulls`` a null input leaves ``y`` unchanged
    (and yields null on that row)."""
    return seeded_x.ewm_mean(alpha=alpha, adjust=False, ignore_nulls=skip_nulls)


def ema_alpha(length: int) -> float:
    """TA-Lib's EMA smoothing factor, ``2 / (length + 1)``."""
    return 2.0 / (length + 1)


def wilder_alpha(length: int) -> float:
    """Wilder's smoothing factor, ``1 / length``."""
    return 1.0 / length
