"""The trading view of backtest predictions: long when the model says up, flat otherwise,
against buy-and-hold of the same tickers over the same days, after a cost per trade.

Positions earn *daily next-day* returns, never the label's multi-day forward return, so
with a horizon > 1 no day's move is counted twice: each day's "up" call opens a sleeve of
1/horizon of the ticker's capital held for ``horizon`` days (the position on a day is the
average of the last ``horizon`` calls, a staggered portfolio), and each day the portfolio
earns that position times the ticker's return to the next trading day. Tickers are equally
weighted among those with a backtest row that day. A trade costs ``cost_per_trade`` per
unit of capital changed (|position change|), entering included.

The annualised Sharpe ratios and the strategy's Sharpe minus buy-and-hold's come with
intervals from a stationary bootstrap over trading days (``bootstrap.return_blocks``):
both daily series are resampled on the same days, so the difference is paired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from marketpredictor_train.validation.intervals import Interval

TRADING_DAYS_PER_YEAR = 252

METHOD = (
    "long 1 when the model says up, flat otherwise; with horizon h each call holds 1/h of "
    "the capital for h days (position = mean of the last h calls); returns are daily "
    "close-to-next-close, equal weight across tickers, cost = cost_per_trade x |position "
    "change|; Sharpe is annualised with sqrt(252), risk-free rate 0; its intervals resample "
    "whole trading days (stationary bootstrap, the same days for the strategy and "
    "buy-and-hold), percentile"
)


@dataclass(frozen=True)
class TradingView:
    """Strategy and buy-and-hold statistics, the daily equity curves behind them, each
    ticker's cumulative returns, and intervals of the Sharpe ratios and of their difference
    (strategy minus buy-and-hold; None where a Sharpe ratio is undefined)."""

    strategy: dict[str, Any]
    buy_and_hold: dict[str, Any]
    per_ticker: dict[str, dict[str, float]]
    cost_per_trade: float
    horizon: int
    dates: list[Any] = field(repr=False, default_factory=list)
    strategy_equity: list[float] = field(repr=False, default_factory=list)
    buy_and_hold_equity: list[float] = field(repr=False, default_factory=list)
    sharpe_ci: Interval | None = None
    buy_and_hold_sharpe_ci: Interval | None = None
    sharpe_difference_ci: Interval | None = None

    @property
    def sharpe_difference(self) -> float | None:
        """Strategy Sharpe minus buy-and-hold Sharpe (annualised)."""
        strategy, hold = self.strategy["sharpe"], self.buy_and_hold["sharpe"]
        return None if strategy is None or hold is None else strategy - hold

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "buy_and_hold": self.buy_and_hold,
            "sharpe_ci": _interval_dict(self.sharpe_ci),
            "buy_and_hold_sharpe_ci": _interval_dict(self.buy_and_hold_sharpe_ci),
            "sharpe_difference": self.sharpe_difference,
            "sharpe_difference_ci": _interval_dict(self.sharpe_difference_ci),
            "cost_per_trade": self.cost_per_trade,
            "horizon": self.horizon,
            "method": METHOD,
        }


def _interval_dict(interval: Interval | None) -> dict[str, Any] | None:
    return None if interval is None else interval.to_dict()


def trading_view(  # noqa: PLR0913 - the rows, their calls and how to trade them
    tickers: np.ndarray,
    dates: np.ndarray,
    signal: np.ndarray,
    next_return: np.ndarray,
    *,
    horizon: int,
    cost_per_trade: float,
    level: float = 0.95,
    seed: int = 0,
    intervals: bool = True,
) -> TradingView:
    """Rows must be sorted by (ticker, date); ``signal`` is 1 for "up", 0 otherwise;
    ``next_return`` is the ticker's close-to-next-close return from each row's date.
    The Sharpe intervals are at ``level``, their resamples drawn with ``seed``; none
    without ``intervals`` (for a caller that reads only the statistics)."""
    import numpy as np

    tickers = np.asarray(tickers)
    dates = np.asarray(dates)
    signal = np.asarray(signal, dtype=float)
    next_return = np.nan_to_num(np.asarray(next_return, dtype=float), nan=0.0)
    starts = _segment_starts(tickers)

    position = _staggered(signal, starts, horizon)
    holding = np.ones_like(signal)
    strat_row = _net_returns(position, next_return, starts, cost_per_trade)
    hold_row = _net_returns(holding, next_return, starts, cost_per_trade)

    day_values, day_of_row = np.unique(dates, return_inverse=True)
    count = np.bincount(day_of_row, minlength=day_values.size).astype(float)

    def daily(values: np.ndarray) -> np.ndarray:
        return np.bincount(day_of_row, weights=values, minlength=day_values.size) / count

    strat_daily = daily(strat_row[0])
    hold_daily = daily(hold_row[0])
    strategy = _stats(strat_daily, daily(position), daily(strat_row[1]))
    buy_hold = _stats(hold_daily, daily(holding), daily(hold_row[1]))
    sharpe_ci, hold_ci, difference_ci = (
        sharpe_intervals(strat_daily, hold_daily, level=level, seed=seed)
        if intervals
        else (None, None, None)
    )

    per_ticker: dict[str, dict[str, float]] = {}
    bounds = [*starts.tolist(), tickers.size]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        per_ticker[str(tickers[a])] = {
            "strategy_return": float(np.prod(1 + strat_row[0][a:b]) - 1),
            "buy_and_hold_return": float(np.prod(1 + hold_row[0][a:b]) - 1),
        }
    return TradingView(
        strategy=strategy,
        buy_and_hold=buy_hold,
        per_ticker=per_ticker,
        cost_per_trade=cost_per_trade,
        horizon=horizon,
        dates=day_values.tolist(),
        strategy_equity=np.cumprod(1 + strat_daily).tolist(),
        buy_and_hold_equity=np.cumprod(1 + hold_daily).tolist(),
        sharpe_ci=sharpe_ci,
        buy_and_hold_sharpe_ci=hold_ci,
        sharpe_difference_ci=difference_ci,
    )


def sharpe_intervals(
    strategy_daily: np.ndarray,
    hold_daily: np.ndarray,
    *,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[Interval | None, Interval | None, Interval | None]:
    """Intervals of the annualised Sharpe ratio of each daily return series and of their
    difference (strategy minus buy-and-hold), from the same resampled trading days; None
    for a ratio that is undefined (no variation) on the backtest."""
    import numpy as np

    from marketpredictor_train.validation.bootstrap import percentile_interval, return_blocks
    from marketpredictor_train.validation.intervals import Interval

    both = np.column_stack([strategy_daily, hold_daily]).astype(float)
    n_days = int(both.shape[0])
    estimates = [_sharpe(both[:, 0]), _sharpe(both[:, 1])]
    if n_days < 3 or all(e is None for e in estimates):
        return None, None, None
    blocks = return_blocks(both, resamples=resamples, seed=seed)
    totals = blocks.resampled_totals(np.column_stack([both, both**2]))
    mean = totals[:, :2] / n_days
    variance = (totals[:, 2:] / n_days - mean**2) * n_days / (n_days - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(
            variance > 1e-24, mean / np.sqrt(variance) * math.sqrt(TRADING_DAYS_PER_YEAR), np.nan
        )

    def interval(samples: np.ndarray, estimate: float | None) -> Interval | None:
        # a ratio undefined on the backtest, or on most resamples, has no interval
        if estimate is None or np.mean(np.isfinite(samples)) < 0.5:
            return None
        low, high = percentile_interval(samples, level)
        return Interval(
            estimate=estimate,
            low=low,
            high=high,
            level=level,
            method=f"percentile, {blocks.method}",
            n_days=n_days,
            effective_n=float(n_days),
        )

    strategy, hold = estimates
    difference = None if strategy is None or hold is None else strategy - hold
    return (
        interval(sharpe[:, 0], strategy),
        interval(sharpe[:, 1], hold),
        interval(sharpe[:, 0] - sharpe[:, 1], difference),
    )


def _sharpe(daily: np.ndarray) -> float | None:
    import numpy as np

    sd = float(np.std(daily, ddof=1)) if daily.size > 1 else 0.0
    return float(np.mean(daily) / sd * math.sqrt(TRADING_DAYS_PER_YEAR)) if sd > 1e-12 else None


def _segment_starts(tickers: np.ndarray) -> np.ndarray:
    import numpy as np

    if tickers.size == 0:
        return np.zeros(0, dtype=int)
    change = np.flatnonzero(tickers[1:] != tickers[:-1]) + 1
    return np.concatenate([[0], change]).astype(int)


def _staggered(signal: np.ndarray, starts: np.ndarray, horizon: int) -> np.ndarray:
    """Mean of the last ``horizon`` calls of the same ticker (calls before its first
    backtest row count as flat)."""
    import numpy as np

    if horizon <= 1:
        return signal.copy()
    out = np.empty_like(signal)
    bounds = [*starts.tolist(), signal.size]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        csum = np.concatenate([[0.0], np.cumsum(signal[a:b])])
        idx = np.arange(1, b - a + 1)
        out[a:b] = (csum[idx] - csum[np.maximum(idx - horizon, 0)]) / horizon
    return out


def _net_returns(
    position: np.ndarray, next_return: np.ndarray, starts: np.ndarray, cost: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row return after costs, and per-row |position change| (turnover)."""
    import numpy as np

    previous = np.concatenate([[0.0], position[:-1]]) if position.size else position
    previous[starts] = 0.0  # every ticker starts flat: entering is a trade
    turnover = np.abs(position - previous)
    return position * next_return - cost * turnover, turnover


def _stats(daily: np.ndarray, exposure: np.ndarray, turnover: np.ndarray) -> dict[str, Any]:
    import numpy as np

    n = int(daily.size)
    equity = np.cumprod(1 + daily) if n else np.ones(0)
    peaks = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:] if n else equity
    drawdown = float(np.min(equity / peaks - 1)) if n else 0.0
    sharpe = _sharpe(daily)
    in_market = exposure > 0
    return {
        "cumulative_return": float(equity[-1] - 1) if n else 0.0,
        "sharpe": sharpe,
        "max_drawdown": min(drawdown, 0.0),
        "hit_rate": float(np.mean(daily[in_market] > 0)) if in_market.any() else None,
        "turnover": float(np.mean(turnover)) if n else 0.0,
        "exposure": float(np.mean(exposure)) if n else 0.0,
        "n_days": n,
    }
