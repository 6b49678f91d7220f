"""What each native indicator kind produces: column names, warm-up lengths, whether the
model sees the column, and the Polars expression computing it.

Column names derive only from the kind and its parameters (``bb_pctb_20_2``), so a name
always means one computation. Raw indicators keep their natural units (price, shares);
the model sees scale-free versions: ``<raw>_rel`` is the raw value divided by the close
(price differences: MACD, ATR, standard deviation) and ``<raw>_dist`` is
``close / raw - 1`` (price-level lines: SMA, EMA, VWAP); oscillators, changes and ratios
are scale-free as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from marketpredictor_train.features import momentum, trend, volatility, volume
from marketpredictor_train.features.spec import Indicator, _format_value

HIGH, LOW, CLOSE, VOLUME = (pl.col(c) for c in ("high", "low", "close", "volume"))


@dataclass(frozen=True)
class Output:
    """One feature column.

    ``per_ticker`` expressions read a ticker's history and are evaluated with
    ``.over("ticker")``; the others combine columns of the same row. ``expr`` is None for
    a column computed outside Polars (the pandas-ta bridge).
    """

    name: str
    warmup: int
    model: bool
    expr: pl.Expr | None
    per_ticker: bool = True


def _suffix(ind: Indicator, *names: str) -> str:
    return "_".join(_format_value(ind.param(n)) for n in names)


def rel(raw: str, warmup: int) -> Output:
    """``raw / close``: a price difference as a fraction of the price."""
    return Output(f"{raw}_rel", warmup, True, pl.col(raw) / CLOSE, per_ticker=False)


def dist(raw: str, warmup: int) -> Output:
    """``close / raw - 1``: how far the close is above a price-level line."""
    return Output(f"{raw}_dist", warmup, True, CLOSE / pl.col(raw) - 1.0, per_ticker=False)


def _rsi(ind: Indicator) -> list[Output]:
    n = ind.param("length")
    return [Output(f"rsi_{n}", n, True, momentum.rsi(CLOSE, n))]


def _macd(ind: Indicator) -> list[Output]:
    fast, slow, signal = ind.param("fast"), ind.param("slow"), ind.param("signal")
    s = _suffix(ind, "fast", "slow", "signal")
    warm = slow + signal - 2
    line, sig, hist = momentum.macd(CLOSE, fast, slow, signal)
    names = (f"macd_{s}", f"macd_signal_{s}", f"macd_hist_{s}")
    raw = [Output(n, warm, False, e) for n, e in zip(names, (line, sig, hist), strict=True)]
    return [*raw, *(rel(n, warm) for n in names)]


def _stoch(ind: Indicator) -> list[Output]:
    k, sk, d = ind.param("k"), ind.param("smooth_k"), ind.param("d")
    s = _suffix(ind, "k", "smooth_k", "d")
    warm = k + sk + d - 3
    slow_k, slow_d = momentum.stochastic(HIGH, LOW, CLOSE, k, sk, d)
    return [Output(f"stoch_k_{s}", warm, True, slow_k), Output(f"stoch_d_{s}", warm, True, slow_d)]


def _roc(ind: Indicator) -> list[Output]:
    n = ind.param("length")
    return [Output(f"roc_{n}", n, True, momentum.roc(CLOSE, n))]


def _atr(ind: Indicator) -> list[Output]:
    n = ind.param("length")
    return [Output(f"atr_{n}", n, False, volatility.atr(HIGH, LOW, CLOSE, n)), rel(f"atr_{n}", n)]


def _bbands(ind: Indicator) -> list[Output]:
    n, mult = ind.param("length"), ind.param("mult")
    s = _suffix(ind, "length", "mult")
    upper, middle, lower, pctb, width = volatility.bollinger(CLOSE, n, mult)
    warm = n - 1
    return [
        Output(f"bb_upper_{s}", warm, False, upper),
        Output(f"bb_middle_{s}", warm, False, middle),
        Output(f"bb_lower_{s}", warm, False, lower),
        Output(f"bb_pctb_{s}", warm, True, pctb),
        Output(f"bb_width_{s}", warm, True, width),
    ]


def _stddev(ind: Indicator) -> list[Output]:
    n = ind.param("length")
    return [Output(f"std_{n}", n - 1, False, volatility.stddev(CLOSE, n)), rel(f"std_{n}", n - 1)]


def _obv(ind: Indicator) -> list[Output]:
    n = ind.param("length")
    return [
        Output("obv", 0, False, volume.obv(CLOSE, VOLUME)),
        Output(f"obv_flow_{n}", n, True, volume.obv_flow(CLOSE, VOLUME, n)),
    ]


def _vwap(ind: Indicator) -> list[Output]:
    n = ind.param("length")
    raw = Output(f"vwap_{n}", n - 1, False, volume.vwap(HIGH, LOW, CLOSE, VOLUME, n))
    return [raw, dist(raw.name, n - 1)]


def _volume_sma(ind: Indicator) -> list[Output]:
    n = ind.param("length")
    sma_name = f"volume_sma_{n}"
    return [
        Output(sma_name, n - 1, False, volume.volume_sma(VOLUME, n)),
        Output(f"volume_ratio_{n}", n - 1, True, VOLUME / pl.col(sma_name), per_ticker=False),
    ]


def _adx(ind: Indicator) -> list[Output]:
    n = ind.param("length")
    plus_di, minus_di, adx = trend.directional(HIGH, LOW, CLOSE, n)
    return [
        Output(f"adx_{n}", 2 * n - 1, True, adx),
        Output(f"plus_di_{n}", n, True, plus_di),
        Output(f"minus_di_{n}", n, True, minus_di),
    ]


def _sma(ind: Indicator) -> list[Output]:
    n = ind.param("length")
    return [Output(f"sma_{n}", n - 1, False, trend.sma(CLOSE, n)), dist(f"sma_{n}", n - 1)]


def _ema(ind: Indicator) -> list[Output]:
    n = ind.param("length")
    raw = Output(f"ema_{n}", n - 1, False, trend.exponential_ma(CLOSE, n))
    return [raw, dist(raw.name, n - 1)]


NATIVE: dict[str, Callable[[Indicator], list[Output]]] = {
    "rsi": _rsi,
    "macd": _macd,
    "stoch": _stoch,
    "roc": _roc,
    "atr": _atr,
    "bbands": _bbands,
    "stddev": _stddev,
    "obv": _obv,
    "vwap": _vwap,
    "volume_sma": _volume_sma,
    "adx": _adx,
    "sma": _sma,
    "ema": _ema,
}
