"""What each native indicator kind computes: its feature columns (names, warm-up lengths,
whether the model sees them) and the hidden intermediate columns they are built from.

Column names derive only from the kind and its parameters (``bb_pctb_20_2``), so a name
always means one computation, and indicators that need the same intermediate (the 20-day
SMA, the true range, a running volume total) share one column. Raw indicators keep their
natural units (price, shares); the model sees scale-free versions: ``<raw>_rel`` is the
raw value divided by the close (price differences: MACD, ATR, standard deviation) and
``<raw>_dist`` is ``close / raw - 1`` (price-level lines: SMA, EMA, VWAP); oscillators,
changes and ratios are scale-free as they are.

Staging for speed: stateful steps (running totals, exponential smoothing, rolling standard
deviation) are separate *per ticker* columns evaluated with ``.over(ticker)``; everything
else is row-wise on whole columns (see ``_core``). Rolling sums come from differences of a
per-ticker running total, so the 10-, 20- and 50-day SMAs share one cumulative sum of the
close; the seeds of TA-Lib's smoothings are one sum per ticker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from marketpredictor_train.features import momentum, trend, volatility, volume
from marketpredictor_train.features._core import (
    POSITION,
    TICKER_ID,
    ema_alpha,
    lag,
    null_before,
    position_column,
    ratio,
    running_total,
    seeded,
    short_window_mean,
    smooth,
    ticker_id_column,
    wilder_alpha,
    window_sum_at,
    window_total,
)
from marketpredictor_train.features.spec import Indicator, _format_value

HIGH, LOW, CLOSE, VOLUME = (pl.col(c) for c in ("high", "low", "close", "volume"))


@dataclass(frozen=True)
class Column:
    """One computed column: a feature, or a hidden intermediate (name starting ``__``).

    ``per_ticker`` expressions carry state along a ticker's history and are evaluated with
    ``.over(ticker)``; ``scalar`` ones among them give one value per ticker, repeated on
    its rows. The others are row-wise. ``expr`` is None for a column computed outside
    Polars (the pandas-ta bridge). ``warmup`` is the number of leading rows of each
    ticker that are null; ``model`` marks the scale-free columns the model trains on.
    """

    name: str
    expr: pl.Expr | None
    per_ticker: bool = False
    warmup: int = 0
    model: bool = False
    scalar: bool = False

    @property
    def is_feature(self) -> bool:
        return not self.name.startswith("__")


def hidden(name: str, expr: pl.Expr, *, per_ticker: bool = False) -> Column:
    return Column(f"__{name}", expr, per_ticker)


def feature(
    name: str, expr: pl.Expr, warmup: int, *, model: bool, per_ticker: bool = False
) -> Column:
    return Column(name, expr, per_ticker, warmup, model)


def ref(column: Column) -> pl.Expr:
    return pl.col(column.name)


def rel(raw: Column) -> Column:
    """``raw / close``: a price difference as a fraction of the price (prices are checked
    to be positive on input)."""
    return feature(f"{raw.name}_rel", ref(raw) / CLOSE, raw.warmup, model=True)


def dist(raw: Column, *, guard: bool = False) -> Column:
    """``close / raw - 1``: how far the close is above a price-level line. Native lines
    (averages of positive prices) are positive; ``guard`` nulls a zero line from outside."""
    line = ref(raw)
    value = (ratio(CLOSE, line) if guard else CLOSE / line) - 1.0
    return feature(f"{raw.name}_dist", value, raw.warmup, model=True)


def _suffix(ind: Indicator, *names: str) -> str:
    return "_".join(_format_value(ind.param(n)) for n in names)


# Intermediates shared by several indicators.
TICKER = Column(TICKER_ID, ticker_id_column(pl.col("ticker")))
POS = Column(POSITION, position_column(pl.col(TICKER_ID)))
PREV_CLOSE = hidden("prev_close", lag(CLOSE, 1))
CHANGE = hidden("change", CLOSE - ref(PREV_CLOSE))
TRUE_RANGE = hidden("true_range", volatility.true_range(HIGH, LOW, ref(PREV_CLOSE)))
CLOSE_TOTAL = hidden("close_total", running_total(CLOSE), per_ticker=True)
VOLUME_TOTAL = hidden("volume_total", running_total(VOLUME), per_ticker=True)
BASE = [TICKER, POS, PREV_CLOSE, CHANGE]


def _smoothed(
    name: str, x: pl.Expr, alpha: float, seed_at: int, seed: pl.Expr, *, skip_nulls: bool = False
) -> list[Column]:
    """A TA-Lib seeded smoothing of ``x``: the seeded input (row-wise, ``seed``'s value up
    to row ``seed_at``), the per-ticker recursion, and the result with its warm-up masked
    (the last column)."""
    start = hidden(f"{name}_input", seeded(x, seed_at, seed))
    running = hidden(
        f"{name}_running", smooth(ref(start), alpha, skip_nulls=skip_nulls), per_ticker=True
    )
    return [start, running, hidden(name, null_before(ref(running), seed_at))]


def _seed(x: Column | pl.Expr, start: int, length: int, divisor: int) -> tuple[Column, pl.Expr]:
    """A per-ticker column (one value per ticker) and the seed expression
    ``sum(x[start .. start + length - 1]) / divisor``.

    The aggregation stays a bare ``sum()`` or ``mean()``: Polars reduces each ticker's
    slice on its own there, while arithmetic on the aggregate inside ``over``
    (``sum() / n``) takes a path whose rounding depends on where the ticker's rows sit in
    memory, so a ticker's values would move in the last bits with its neighbours. Any
    other division is row-wise.
    """
    name = x.name[2:] if isinstance(x, Column) else x.meta.output_name()
    values = ref(x) if isinstance(x, Column) else x
    if divisor == length:
        expr = window_sum_at(values, start, length, mean=True)
        column = Column(f"__{name}_mean_{start}_{length}", expr, True, scalar=True)
        return column, ref(column)
    expr = window_sum_at(values, start, length)
    column = Column(f"__{name}_sum_{start}_{length}", expr, True, scalar=True)
    return column, ref(column) / divisor


def _wilder(name: str, x: Column, length: int) -> list[Column]:
    """Wilder's RMA of ``x`` (valid from position 1) seeded with the mean of its first
    ``length`` values, as TA-Lib's RSI and ATR: first value at position ``length``."""
    seed_column, seed = _seed(x, 1, length, length)
    return [seed_column, *_smoothed(name, ref(x), wilder_alpha(length), length, seed)]


def _sma(n: int) -> list[Column]:
    return [TICKER, POS, CLOSE_TOTAL, hidden(f"sma_{n}", window_total(ref(CLOSE_TOTAL), n) / n)]


def _ema(n: int, seed_at: int | None = None) -> list[Column]:
    """TA-Lib's EMA of the close, seeded with the SMA of the ``n`` closes up to ``seed_at``
    (default ``n - 1``, the first full window; MACD's fast EMA starts later)."""
    name = f"ema_{n}" if seed_at is None else f"ema_{n}_from_{seed_at}"
    seed_at = n - 1 if seed_at is None else seed_at
    seed_column, seed = _seed(CLOSE, seed_at - n + 1, n, n)
    return [TICKER, POS, seed_column, *_smoothed(name, CLOSE, ema_alpha(n), seed_at, seed)]


def _std(n: int) -> Column:
    return hidden(f"std_{n}", volatility.stddev(CLOSE, n), per_ticker=True)


def _volume_sum(n: int) -> list[Column]:
    return [
        TICKER,
        POS,
        VOLUME_TOTAL,
        hidden(f"volume_sum_{n}", window_total(ref(VOLUME_TOTAL), n)),
    ]


def _rsi(ind: Indicator) -> list[Column]:
    n = ind.param("length")
    gain = hidden("gain", momentum.gain(ref(CHANGE)))
    loss = hidden("loss", momentum.loss(ref(CHANGE)))
    avg_gain = _wilder(f"avg_gain_{n}", gain, n)
    avg_loss = _wilder(f"avg_loss_{n}", loss, n)
    value = momentum.rsi(ref(avg_gain[-1]), ref(avg_loss[-1]))
    return [*BASE, gain, loss, *avg_gain, *avg_loss, feature(f"rsi_{n}", value, n, model=True)]


def _macd(ind: Indicator) -> list[Column]:
    fast, slow, signal = ind.param("fast"), ind.param("slow"), ind.param("signal")
    s = _suffix(ind, "fast", "slow", "signal")
    first = momentum.macd_first_valid(slow, signal)
    fast_ema = _ema(fast, seed_at=momentum.macd_seed_position(slow))
    slow_ema = _ema(slow)
    line = hidden(f"macd_line_{fast}_{slow}", ref(fast_ema[-1]) - ref(slow_ema[-1]))
    line_seed, seed = _seed(line, momentum.macd_seed_position(slow), signal, signal)
    signal_line = _smoothed(
        f"macd_signal_{fast}_{slow}_{signal}",
        ref(line),
        ema_alpha(signal),
        first,
        seed,
    )
    public_line = feature(f"macd_{s}", null_before(ref(line), first), first, model=False)
    sig = feature(f"macd_signal_{s}", ref(signal_line[-1]), first, model=False)
    hist = feature(f"macd_hist_{s}", ref(public_line) - ref(sig), first, model=False)
    raw = [public_line, sig, hist]
    return [*fast_ema, *slow_ema, line, line_seed, *signal_line, *raw, *(rel(c) for c in raw)]


def _window_extreme(source: str, length: int, *, highest: bool) -> list[Column]:
    """The max (or min) of ``source`` over the last ``length`` rows, null until the
    ticker has that many, as a doubling table: windows of 2, 4, 8, ... rows each combine
    two overlapping halves, and the last combines two windows covering ``length``.

    Max and min only select values, so these whole-column windows are exact once masked
    to the ticker's own rows, and cheaper than Polars' ``rolling_max`` for the
    Stochastic's 14 rows. The last column is the result.
    """
    combine = pl.max_horizontal if highest else pl.min_horizontal
    name = "highest" if highest else "lowest"
    steps: list[Column] = []
    window, current = 1, pl.col(source)
    while window * 2 <= length:
        step = hidden(f"{source}_{name}_{window * 2}", combine(current, current.shift(window)))
        steps.append(step)
        window, current = window * 2, ref(step)
    result = current if window == length else combine(current, current.shift(length - window))
    steps.append(hidden(f"{name}_{length}", null_before(result, length - 1)))
    return steps


def _stoch(ind: Indicator) -> list[Column]:
    k, sk, d = ind.param("k"), ind.param("smooth_k"), ind.param("d")
    s = _suffix(ind, "k", "smooth_k", "d")
    first = momentum.stochastic_first_valid(k, sk, d)
    # rolling max/min only select values, so whole-column windows masked to the ticker's
    # own rows are exact
    high_steps = _window_extreme("high", k, highest=True)
    low_steps = _window_extreme("low", k, highest=False)
    highest, lowest = high_steps[-1], low_steps[-1]
    fast_k = hidden(f"fast_k_{k}", momentum.raw_stochastic(CLOSE, ref(highest), ref(lowest)))
    slow_k = hidden(f"slow_k_{k}_{sk}", short_window_mean(ref(fast_k), sk))
    pct_k = feature(f"stoch_k_{s}", null_before(ref(slow_k), first), first, model=True)
    pct_d = feature(f"stoch_d_{s}", short_window_mean(ref(slow_k), d), first, model=True)
    return [TICKER, POS, *high_steps, *low_steps, fast_k, slow_k, pct_k, pct_d]


def _roc(ind: Indicator) -> list[Column]:
    n = ind.param("length")
    return [TICKER, POS, feature(f"roc_{n}", momentum.roc(CLOSE, n), n, model=True)]


def _atr(ind: Indicator) -> list[Column]:
    n = ind.param("length")
    smoothed = _wilder(f"atr_{n}", TRUE_RANGE, n)
    raw = feature(f"atr_{n}", ref(smoothed[-1]), n, model=False)
    return [*BASE, TRUE_RANGE, *smoothed, raw, rel(raw)]


def _bbands(ind: Indicator) -> list[Column]:
    n, mult = ind.param("length"), ind.param("mult")
    s = _suffix(ind, "length", "mult")
    sma, std = _sma(n), _std(n)
    upper, lower = volatility.bollinger_bands(ref(sma[-1]), ref(std), mult)
    warm = n - 1
    bands = [
        feature(f"bb_upper_{s}", upper, warm, model=False),
        feature(f"bb_middle_{s}", ref(sma[-1]), warm, model=False),
        feature(f"bb_lower_{s}", lower, warm, model=False),
    ]
    up, mid, low = (ref(c) for c in bands)
    return [
        *sma,
        std,
        *bands,
        feature(f"bb_pctb_{s}", volatility.percent_b(CLOSE, up, low), warm, model=True),
        feature(f"bb_width_{s}", volatility.bandwidth(up, low, mid), warm, model=True),
    ]


def _stddev(ind: Indicator) -> list[Column]:
    n = ind.param("length")
    std = _std(n)
    raw = feature(f"std_{n}", ref(std), n - 1, model=False)
    return [TICKER, std, raw, rel(raw)]


def _obv(ind: Indicator) -> list[Column]:
    n = ind.param("length")
    signed = hidden("signed_volume", volume.signed_volume(ref(CHANGE), VOLUME))
    obv = feature("obv", running_total(ref(signed)), 0, model=False, per_ticker=True)
    vol_sum = _volume_sum(n)
    flow = volume.obv_flow(ref(obv), ref(vol_sum[-1]), n)
    return [*BASE, signed, obv, *vol_sum, feature(f"obv_flow_{n}", flow, n, model=True)]


def _vwap(ind: Indicator) -> list[Column]:
    n = ind.param("length")
    tpv = hidden("price_volume", volume.typical_price_volume(HIGH, LOW, CLOSE, VOLUME))
    tpv_total = hidden("price_volume_total", running_total(ref(tpv)), per_ticker=True)
    tpv_sum = hidden(f"price_volume_sum_{n}", window_total(ref(tpv_total), n))
    vol_sum = _volume_sum(n)
    raw = feature(f"vwap_{n}", volume.vwap(ref(tpv_sum), ref(vol_sum[-1])), n - 1, model=False)
    return [TICKER, POS, tpv, tpv_total, tpv_sum, *vol_sum, raw, dist(raw)]


def _volume_sma(ind: Indicator) -> list[Column]:
    n = ind.param("length")
    vol_sum = _volume_sum(n)
    sma = feature(f"volume_sma_{n}", ref(vol_sum[-1]) / n, n - 1, model=False)
    ratio_ = feature(f"volume_ratio_{n}", ratio(VOLUME, ref(sma)), n - 1, model=True)
    return [*vol_sum, sma, ratio_]


def _adx(ind: Indicator) -> list[Column]:
    n = ind.param("length")
    prev_high = hidden("prev_high", lag(HIGH, 1))
    prev_low = hidden("prev_low", lag(LOW, 1))
    plus_dm, minus_dm = trend.directional_movement(HIGH, LOW, ref(prev_high), ref(prev_low))
    moves = [TRUE_RANGE, hidden("plus_dm", plus_dm), hidden("minus_dm", minus_dm)]
    sums = []
    for x in moves:
        # TA-Lib's +DI/-DI/ADX sums start from the n - 1 values at positions 1..n-1
        seed_column, seed = _seed(x, 1, n - 1, trend.wilder_sum_scale(n))
        steps = [seed_column]
        sums.append(
            [
                *steps,
                *_smoothed(f"{x.name[2:]}_wilder_sum_{n}", ref(x), wilder_alpha(n), n - 1, seed),
            ]
        )
    tr_sum, plus_sum, minus_sum = (ref(steps[-1]) for steps in sums)
    plus_di = feature(
        f"plus_di_{n}", null_before(trend.directional_index(plus_sum, tr_sum), n), n, model=True
    )
    minus_di = feature(
        f"minus_di_{n}", null_before(trend.directional_index(minus_sum, tr_sum), n), n, model=True
    )
    dx = hidden(f"dx_{n}", trend.directional_movement_index(ref(plus_di), ref(minus_di)))
    # ADX: Wilder's RMA of DX seeded with the mean of its first n values (undefined DX
    # counts 0, as in TA-Lib); afterwards an undefined DX leaves the ADX unchanged, which
    # skip_nulls plus carrying the last value over that row reproduces.
    seed_at = 2 * n - 1
    dx_seed, dx_mean = _seed(dx, n, n, n)
    adx_steps = _smoothed(f"adx_{n}", ref(dx), wilder_alpha(n), seed_at, dx_mean, skip_nulls=True)
    adx = feature(
        f"adx_{n}", null_before(ref(adx_steps[-1]).forward_fill(), seed_at), seed_at, model=True
    )
    return [
        *BASE,
        TRUE_RANGE,
        prev_high,
        prev_low,
        *moves,
        *(step for steps in sums for step in steps),
        dx,
        dx_seed,
        *adx_steps,
        adx,
        plus_di,
        minus_di,
    ]


def _sma_feature(ind: Indicator) -> list[Column]:
    n = ind.param("length")
    sma = _sma(n)
    raw = feature(f"sma_{n}", ref(sma[-1]), n - 1, model=False)
    return [*sma, raw, dist(raw)]


def _ema_feature(ind: Indicator) -> list[Column]:
    n = ind.param("length")
    ema = _ema(n)
    raw = feature(f"ema_{n}", ref(ema[-1]), n - 1, model=False)
    return [*ema, raw, dist(raw)]


NATIVE: dict[str, Callable[[Indicator], list[Column]]] = {
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
    "sma": _sma_feature,
    "ema": _ema_feature,
}
