"""Volume indicators: on-balance volume and its flow, rolling VWAP, volume SMA and ratio
(how they are staged: see ``catalog``)."""

from __future__ import annotations

import polars as pl

from marketpredictor_train.features._core import lag, position, ratio


def signed_volume(change: pl.Expr, volume: pl.Expr) -> pl.Expr:
    """Volume counted up on an up close and down on a down close; on a ticker's first row
    the whole volume, so the running total is TA-Lib's OBV, which starts there."""
    return (
        pl.when(position() == 0)
        .then(volume)
        .when(change > 0.0)
        .then(volume)
        .when(change < 0.0)
        .then(-volume)
        .otherwise(0.0)
    )


def obv_flow(obv: pl.Expr, volume_sum: pl.Expr, length: int) -> pl.Expr:
    """OBV's change over ``length`` rows divided by the volume traded in them, in [-1, 1]:
    the share of the window's volume on up days minus the share on down days. Unlike OBV's
    level it depends neither on where the history starts nor on the share count."""
    return ratio(obv - lag(obv, length), volume_sum)


def typical_price_volume(high: pl.Expr, low: pl.Expr, close: pl.Expr, volume: pl.Expr) -> pl.Expr:
    """The day's typical price ``(high + low + close) / 3`` times its volume."""
    return (high + low + close) / 3.0 * volume


def vwap(price_volume_sum: pl.Expr, volume_sum: pl.Expr) -> pl.Expr:
    """Rolling volume-weighted average price: the window's summed typical price x volume
    over its summed volume."""
    return ratio(price_volume_sum, volume_sum)
