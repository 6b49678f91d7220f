"""Volume indicators: on-balance volume, rolling VWAP, volume SMA.

Each function maps one ticker's expressions (in date order) to indicator expressions; rows
before the warm-up are null.
"""

from __future__ import annotations

import polars as pl

from marketpredictor_train.features._smoothing import position


def signed_volume(close: pl.Expr, volume: pl.Expr) -> pl.Expr:
    """The volume counted up on an up close, down on a down close, 0 on an unchanged one."""
    change = close.diff()
    return pl.when(change > 0.0).then(volume).when(change < 0.0).then(-volume).otherwise(0.0)


def obv(close: pl.Expr, volume: pl.Expr) -> pl.Expr:
    """On-balance volume as TA-Lib defines it: starts at the first row's volume."""
    return pl.when(position() == 0).then(volume).otherwise(signed_volume(close, volume)).cum_sum()


def obv_flow(close: pl.Expr, volume: pl.Expr, length: int) -> pl.Expr:
    """OBV's change over ``length`` rows divided by the volume traded in them, in [-1, 1]:
    the share of recent volume that came on up days minus the share on down days. Unlike
    OBV's level it does not depend on where the history starts or on the share count."""
    flow = obv(close, volume)
    return (flow - flow.shift(length)) / volume.rolling_sum(length)


def vwap(high: pl.Expr, low: pl.Expr, close: pl.Expr, volume: pl.Expr, length: int) -> pl.Expr:
    """Rolling volume-weighted average price over the last ``length`` rows (trading days),
    weighting each day's typical price (high + low + close) / 3 by its volume."""
    typical = (high + low + close) / 3.0
    return (typical * volume).rolling_sum(length) / volume.rolling_sum(length)


def volume_sma(volume: pl.Expr, length: int) -> pl.Expr:
    """Simple moving average of volume over ``length`` rows."""
    return volume.rolling_mean(length)
