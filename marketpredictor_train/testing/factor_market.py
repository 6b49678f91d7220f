"""A seeded one-factor market for measuring intervals: many simulated backtests of tickers
that share the market's move, direction labels that overlap as the pipeline's do, and
predictors with no skill at all (their true accuracy is exactly 0.5).

Returns follow ``r[i, t] = beta_i * m[t] + e[i, t]``: the market factor ``m`` has GARCH(1,1)
volatility (calm and turbulent spells) and Student-t shocks, ``e`` is each ticker's own
noise, scaled so that two tickers' daily returns correlate about ``correlation``. With no
drift every return is symmetric around 0, so a call made from information up to day t is
right with probability 1/2 whatever it is, and a tie (a zero move) has probability 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

DAILY_VOLATILITY = 0.01  # the market factor's long-run daily volatility
_GARCH_ALPHA = 0.08
_GARCH_BETA = 0.90
_TAIL_DF = 5

NO_SKILL_CALLS = ("always_up", "past_direction", "market_call", "coin", "sticky_coin")
"""No-skill predictors: always "up"; the ticker's own last ``horizon``-day direction (the
pipeline's yesterday's-direction baseline, as persistent as the labels); the market's last
``horizon``-day direction for every ticker (one call for all, moving with the labels'
common part); a fair coin per row; and a coin per ticker that keeps its call for ``3 *
horizon`` days on average."""


def factor_log_prices(
    rng: np.random.Generator,
    *,
    sims: int,
    tickers: int,
    days: int,
    correlation: float = 0.4,
    market_drift: float = 0.0,
) -> np.ndarray:
    """Log closes ``(sims, tickers, days)`` starting at 0; ``market_drift`` is the market
    factor's mean daily return."""
    import numpy as np

    scale = np.sqrt((_TAIL_DF - 2) / _TAIL_DF)  # unit-variance Student-t shocks
    omega = DAILY_VOLATILITY**2 * (1 - _GARCH_ALPHA - _GARCH_BETA)
    variance = np.full(sims, DAILY_VOLATILITY**2)
    market = np.empty((sims, days))
    for t in range(days):
        shock = np.sqrt(variance) * rng.standard_t(_TAIL_DF, sims) * scale
        market[:, t] = shock
        variance = omega + _GARCH_ALPHA * shock**2 + _GARCH_BETA * variance
    beta = rng.uniform(0.8, 1.2, (sims, tickers, 1))
    own_vol = DAILY_VOLATILITY * np.sqrt(1 / correlation - 1)
    own = own_vol * rng.standard_t(_TAIL_DF, (sims, tickers, days)) * scale
    returns = beta * (market[:, None, :] + market_drift) + own
    return np.cumsum(returns, axis=2)


def direction_labels(log_close: np.ndarray, horizon: int) -> np.ndarray:
    """``close[t + horizon] > close[t]`` over the last axis (the definition of
    ``features.make_labels`` with no dead band); the last ``horizon`` days have none."""
    return log_close[..., horizon:] > log_close[..., :-horizon]


def no_skill_calls(
    rng: np.random.Generator, log_close: np.ndarray, horizon: int
) -> dict[str, np.ndarray]:
    """Each of :data:`NO_SKILL_CALLS` as bools ``(sims, tickers, days - horizon)`` for the
    days from ``horizon`` on, using nothing after the day it is made."""
    import numpy as np

    past = log_close[..., horizon:] > log_close[..., :-horizon]
    index = log_close.mean(axis=1, keepdims=True)
    market_up = index[..., horizon:] > index[..., :-horizon]
    shape = past.shape
    switch = rng.random(shape) < 1 / (3 * horizon)
    switch[..., 0] = True
    start = rng.random(shape) < 0.5
    # the call in force is the coin drawn at the last switch
    last_switch = np.maximum.accumulate(np.where(switch, np.arange(shape[-1]), 0), axis=-1)
    sticky = np.take_along_axis(start, last_switch, axis=-1)
    return {
        "always_up": np.ones(shape, dtype=bool),
        "past_direction": past,
        "market_call": np.broadcast_to(market_up, shape),
        "coin": rng.random(shape) < 0.5,
        "sticky_coin": sticky,
    }
