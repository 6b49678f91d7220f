"""The trading view on hand-computed cases: costs on every position change, equal weight
across tickers, and no double counting of overlapping multi-day calls."""

from __future__ import annotations

import math

import numpy as np
import pytest

from marketpredictor_train.validation.trading import trading_view


def test_long_flat_returns_costs_and_statistics_by_hand():
    view = trading_view(
        np.array(["A"] * 4),
        np.arange(4),
        np.array([1, 0, 1, 1]),
        np.array([0.01, 0.02, -0.01, 0.03]),
        horizon=1,
        cost_per_trade=0.001,
    )
    # enter (cost), exit (cost), enter (cost), hold
    net = np.array([0.009, -0.001, -0.011, 0.03])
    equity = np.cumprod(1 + net)
    s = view.strategy
    assert s["cumulative_return"] == pytest.approx(equity[-1] - 1)
    assert s["max_drawdown"] == pytest.approx(equity[2] / equity[0] - 1)
    assert s["hit_rate"] == pytest.approx(2 / 3)  # in the market on days 0, 2, 3
    assert s["turnover"] == pytest.approx(3 / 4)
    assert s["exposure"] == pytest.approx(3 / 4)
    assert s["sharpe"] == pytest.approx(net.mean() / net.std(ddof=1) * math.sqrt(252))
    hold = np.array([0.009, 0.02, -0.01, 0.03])  # buy and hold pays the entry once
    assert view.buy_and_hold["cumulative_return"] == pytest.approx(np.prod(1 + hold) - 1)
    assert view.strategy_equity == pytest.approx(equity.tolist())


def test_tickers_are_equally_weighted_each_day():
    view = trading_view(
        np.array(["A", "A", "B", "B"]),
        np.array([0, 1, 0, 1]),
        np.array([1, 1, 0, 0]),
        np.array([0.02, 0.02, 0.04, -0.04]),
        horizon=1,
        cost_per_trade=0.0,
    )
    assert view.strategy["cumulative_return"] == pytest.approx(1.01**2 - 1)
    assert view.strategy["sharpe"] is None  # no variation, no ratio
    assert view.buy_and_hold["cumulative_return"] == pytest.approx(1.03 * 0.99 - 1)
    assert view.per_ticker["A"]["strategy_return"] == pytest.approx(1.02**2 - 1)
    assert view.per_ticker["B"]["strategy_return"] == 0.0
    assert view.per_ticker["B"]["buy_and_hold_return"] == pytest.approx(1.04 * 0.96 - 1)


def test_multi_day_calls_never_count_a_day_twice():
    """With horizon 3 every 'up' call holds a third of the capital for three days, so a
    ticker that is always called up is never more than fully invested: each day earns at
    most that day's return, not the sum of three overlapping 3-day returns."""
    r = 0.01
    view = trading_view(
        np.array(["A"] * 6),
        np.arange(6),
        np.ones(6),
        np.full(6, r),
        horizon=3,
        cost_per_trade=0.0,
    )
    daily = np.diff(np.concatenate([[1.0], view.strategy_equity])) / np.concatenate(
        [[1.0], view.strategy_equity[:-1]]
    )
    assert daily == pytest.approx([r / 3, 2 * r / 3, r, r, r, r])
    assert view.strategy["exposure"] == pytest.approx((1 / 3 + 2 / 3 + 4) / 6)


def test_a_multi_day_call_is_held_for_its_horizon_then_released():
    view = trading_view(
        np.array(["A"] * 5),
        np.arange(5),
        np.array([1, 0, 0, 0, 0]),
        np.full(5, 0.03),
        horizon=2,
        cost_per_trade=0.01,
    )
    # position 1/2 on days 0 and 1, then flat: two changes of 1/2 each cost 0.005 each
    expected = [0.015 - 0.005, 0.015, -0.005, 0.0, 0.0]
    assert view.strategy["cumulative_return"] == pytest.approx(np.prod(1 + np.array(expected)) - 1)
    assert view.strategy["turnover"] == pytest.approx(1.0 / 5)
