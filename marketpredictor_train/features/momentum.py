"""Momentum indicators: RSI, MACD, Stochastic oscillator and rate of change, with TA-Lib's
definitions, seeds and warm-up lengths (how they are staged: see ``catalog``)."""

from __future__ import annotations

import polars as pl

from marketpredictor_train.features._core import lag


def gain(change: pl.Expr) -> pl.Expr:
    """The close's up-move (``change`` = close diff), 0 on a down day."""
    return change.clip(lower_bound=0.0)


def loss(change: pl.Expr) -> pl.Expr:
    """The close's down-move as a positive number, 0 on an up day."""
    return (-change).clip(lower_bound=0.0)


def rsi(avg_gain: pl.Expr, avg_loss: pl.Expr) -> pl.Expr:
    """Relative Strength Index in [0, 100] from Wilder's averages of gains and losses
    (seeded with the mean of the first ``length`` moves, so the first value is at position
    ``length``). A window without any move reports 0, as TA-Lib does."""
    total = avg_gain + avg_loss
    return pl.when(total == 0.0).then(0.0).otherwise(100.0 * avg_gain / total)


def macd_seed_position(slow: int) -> int:
    """TA-Lib starts both MACD EMAs at position ``slow - 1``, the fast one seeded with the
    SMA of its own last ``fast`` closes there (not at ``fast - 1`` as a standalone EMA);
    matching that makes MACD equal to TA-Lib's from its first value on."""
    return slow - 1


def macd_first_valid(slow: int, signal: int) -> int:
    """Where the signal line (the EMA of the MACD line) starts; TA-Lib reports line,
    signal and histogram from there."""
    return slow + signal - 2


def raw_stochastic(close: pl.Expr, highest: pl.Expr, lowest: pl.Expr) -> pl.Expr:
    """Fast %K: where the close sits in the window's high-low range, in [0, 100]; a flat
    window reports 0, as TA-Lib does."""
    spread = highest - lowest
    return pl.when(spread == 0.0).then(0.0).otherwise(100.0 * (close - lowest) / spread)


def stochastic_first_valid(k: int, smooth_k: int, d: int) -> int:
    """TA-Lib's STOCH reports slow %K and %D from where %D starts."""
    return k + smooth_k + d - 3


def roc(close: pl.Expr, length: int) -> pl.Expr:
    """Rate of change in percent, ``100 * (close / close[t - length] - 1)`` (prices are
    checked to be positive on input)."""
    return 100.0 * (close / lag(close, length) - 1.0)
