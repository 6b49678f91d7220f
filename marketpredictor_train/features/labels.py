"""Labels beside the features: the forward return over a horizon and its direction.

A row whose horizon is not complete (the last ``horizon`` rows of a ticker) has no label;
nothing is filled or guessed.
"""

from __future__ import annotations

import polars as pl

from marketpredictor_train.errors import ConfigError
from marketpredictor_train.features._input import prepare


def make_labels(
    ohlcv: pl.DataFrame | pl.LazyFrame, horizon: int, dead_band: float = 0.0
) -> pl.DataFrame:
    """Forward return ``close[t + horizon] / close[t] - 1`` (trading rows of the same ticker)
    and its label: 1 (up) above ``dead_band``, 0 (down) below ``-dead_band``, null inside
    the band (a flat move is neither) or when the horizon is incomplete.

    Returns ``ticker, date, forward_return (Float64), label (Int8)`` sorted by (ticker, date).
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ConfigError(
            f"Label horizon must be a whole number of trading days >= 1, got {horizon!r}.",
            hint="For next-day direction use horizon = 1.",
        )
    if (
        isinstance(dead_band, bool)
        or not isinstance(dead_band, int | float)
        or not (0.0 <= dead_band < 1.0)
    ):
        raise ConfigError(
            f"Label dead band must be a return in [0, 1), got {dead_band!r}.",
            hint="For example 0.002 ignores moves smaller than 0.2%.",
        )
    frame = prepare(ohlcv, ("close",))
    close = pl.col("close")
    forward = close.shift(-horizon).over("ticker") / close - 1.0
    forward = pl.when(forward.is_finite()).then(forward)
    return (
        frame.lazy()
        .select("ticker", "date", forward.alias("forward_return"))
        .with_columns(
            pl.when(pl.col("forward_return") > dead_band)
            .then(1)
            .when(pl.col("forward_return") < -dead_band)
            .then(0)
            .otherwise(None)
            .cast(pl.Int8)
            .alias("label")
        )
        .collect()
    )
