"""Honest intervals (validation.intervals, the Sharpe intervals of validation.trading):
coverage measured on simulated backtests where the truth is known, and the interface the
backtest, the report and the gate rely on.

The coverage tests simulate a one-factor market (tickers correlated about 0.4 through the
market's move, overlapping h-day labels, fat tails, volatility spells) and no-skill
predictors, whose true accuracy is exactly 0.5; an interval must contain 0.5 in at least
90% of backtests. With 800 simulated backtests per horizon the coverage estimate's own
noise is about 0.8 points (sqrt(0.95 * 0.05 / 800)); measured coverage is 94-100% (see
benchmarks/bench_intervals.py), so a failure means the method broke, not bad luck."""

from __future__ import annotations

import math

import numpy as np
import pytest

from marketpredictor_train.testing.factor_market import (
    NO_SKILL_CALLS,
    direction_labels,
    factor_log_prices,
    no_skill_calls,
)
from marketpredictor_train.validation.intervals import (
    Interval,
    auc_difference_interval,
    confusion_indicators,
    effective_sample_sentence,
    effective_sample_size,
    metric_interval,
    paired_difference_interval,
    ratio_interval,
)
from marketpredictor_train.validation.metrics import roc_auc, scored_metrics
from marketpredictor_train.validation.trading import (
    TRADING_DAYS_PER_YEAR,
    sharpe_intervals,
    trading_view,
)

SIMS = 800
TICKERS = 15
BACKTEST_DAYS = 126  # six months of trading days
MIN_COVERAGE = 0.90


def _day_counts(right: np.ndarray) -> np.ndarray:
    """One (tp, fp, fn, tn) row per day from (tickers, days) right/wrong: the intervals only
    use per-day sums, so a day's rows summed into one give the same interval, faster."""
    correct = right.sum(axis=0).astype(float)
    zeros = np.zeros_like(correct)
    return np.column_stack([correct, zeros, right.shape[0] - correct, zeros])


def _simulated_backtests(horizon: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(sims, tickers, days) labels of the scored backtest days and each no-skill call."""
    rng = np.random.default_rng(seed)
    log_close = factor_log_prices(rng, sims=SIMS, tickers=TICKERS, days=horizon + BACKTEST_DAYS)
    n_days = BACKTEST_DAYS - horizon  # days whose label is complete
    labels = direction_labels(log_close, horizon)[..., horizon : horizon + n_days]
    calls = {k: v[..., :n_days] for k, v in no_skill_calls(rng, log_close, horizon).items()}
    return labels, calls


@pytest.mark.parametrize(
    "horizon",
    [pytest.param(h, marks=pytest.mark.slow) for h in (1, 5, 20)],
)
def test_accuracy_interval_covers_no_skill_predictors_at_nominal_rate(horizon: int):
    """The 95% interval contains the true accuracy (0.5) of every no-skill predictor, and
    the paired difference to always-up contains 0, in >= 90% of simulated 6-month backtests
    - including calls as persistent as the labels (the last h-day direction, the market's
    direction for every ticker), where the old percentile bootstrap covered 68-74% at h=20."""
    labels, calls = _simulated_backtests(horizon, seed=100 + horizon)
    n_days = labels.shape[-1]
    days = np.arange(n_days)
    covered = {name: 0 for name in (*NO_SKILL_CALLS, "past_direction-always_up")}
    for s in range(SIMS):
        counts = {name: _day_counts(call[s] == labels[s]) for name, call in calls.items()}
        for name, c in counts.items():
            interval = metric_interval("accuracy", c, days, horizon=horizon)
            covered[name] += interval.low <= 0.5 <= interval.high
        diff = paired_difference_interval(
            "accuracy", counts["past_direction"], counts["always_up"], days, horizon=horizon
        )
        covered["past_direction-always_up"] += diff.low <= 0.0 <= diff.high
    coverage = {name: hits / SIMS for name, hits in covered.items()}
    assert min(coverage.values()) >= MIN_COVERAGE, coverage
    assert max(coverage.values()) <= 1.0
    # honest, not merely wide: at h=1 (125 independent days) it is close to nominal
    if horizon == 1:
        assert all(0.92 <= c <= 0.98 for c in coverage.values()), coverage


def test_simulated_no_skill_calls_have_true_accuracy_one_half():
    """The premise of the coverage test: no tie, and each predictor is right about half the
    time over many rows (symmetric, driftless returns)."""
    labels, calls = _simulated_backtests(5, seed=3)
    for name, call in calls.items():
        assert abs(np.mean(call == labels) - 0.5) < 0.01, name


def test_simulated_labels_are_make_labels():
    """The simulation's labels are the pipeline's own definition (close[t+h] > close[t])."""
    import polars as pl

    from marketpredictor_train.features import make_labels

    log_close = factor_log_prices(np.random.default_rng(1), sims=1, tickers=2, days=40)[0]
    close = 50 * np.exp(log_close)
    dates = pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 2, 9), eager=True)
    ohlcv = pl.DataFrame(
        {
            "ticker": np.repeat(["A", "B"], 40),
            "date": pl.concat([dates, dates]),
            **{c: close.ravel() for c in ("open", "high", "low", "close")},
            "volume": np.full(80, 1e6),
        }
    )
    ours = direction_labels(log_close, 5).ravel()
    theirs = make_labels(ohlcv, 5).drop_nulls("label").get_column("label").to_numpy()
    assert np.array_equal(ours.astype(int), theirs)


def _known_sharpe_returns(rng: np.random.Generator, sims: int, days: int):
    """Daily returns with a known annualised Sharpe ratio: buy-and-hold N(mu, sigma), and a
    strategy in the market on a random half of the days (exposure b ~ Bernoulli(1/2))."""
    mu, sigma = 0.0006, 0.01
    hold = rng.normal(mu, sigma, (sims, days))
    strategy = hold * (rng.random((sims, days)) < 0.5)
    annual = math.sqrt(TRADING_DAYS_PER_YEAR)
    true_hold = mu / sigma * annual
    true_strategy = 0.5 * mu / math.sqrt(0.5 * sigma**2 + 0.25 * mu**2) * annual
    return hold, strategy, true_hold, true_strategy


@pytest.mark.slow
def test_sharpe_intervals_contain_the_true_sharpe_most_of_the_time():
    """Over 6-month backtests of a process whose Sharpe ratio is known, the 95% intervals of
    each Sharpe ratio and of their paired difference contain the truth in >= 85% of 100
    simulated backtests (noise about 2.4 points; measured about 92-95%)."""
    sims = 100
    hold, strategy, true_hold, true_strategy = _known_sharpe_returns(
        np.random.default_rng(8), sims, BACKTEST_DAYS
    )
    hits = np.zeros(3)
    truth = (true_strategy, true_hold, true_strategy - true_hold)
    for s in range(sims):
        intervals = sharpe_intervals(strategy[s], hold[s], resamples=250, seed=s)
        for i, (interval, value) in enumerate(zip(intervals, truth, strict=True)):
            assert interval is not None
            hits[i] += interval.low <= value <= interval.high
    assert np.all(hits / sims >= 0.85), hits / sims


@pytest.mark.slow
def test_sharpe_interval_is_about_as_wide_as_the_textbook_standard_error():
    """Over 126 days the annualised Sharpe ratio is known only to about +-1.4 (one standard
    error, sqrt(252 / 126)): the 95% interval is about four of them wide, not a sliver."""
    hold, strategy, *_ = _known_sharpe_returns(np.random.default_rng(4), 1, BACKTEST_DAYS)
    mine, buy_hold, difference = sharpe_intervals(strategy[0], hold[0], seed=1)
    assert mine is not None and buy_hold is not None and difference is not None
    textbook = 2 * 1.96 * math.sqrt(TRADING_DAYS_PER_YEAR / BACKTEST_DAYS)
    assert 0.8 * textbook < buy_hold.high - buy_hold.low < 1.25 * textbook
    assert buy_hold.low < buy_hold.estimate < buy_hold.high
    assert difference.estimate == pytest.approx(mine.estimate - buy_hold.estimate)
    assert difference.effective_n == buy_hold.n_days == BACKTEST_DAYS
    narrower = sharpe_intervals(strategy[0], hold[0], seed=1, level=0.5)[1]
    assert narrower is not None and narrower.high - narrower.low < buy_hold.high - buy_hold.low


@pytest.mark.slow  # bootstrap intervals of every trading metric
def test_trading_view_carries_sharpe_intervals_in_its_json():
    rng = np.random.default_rng(2)
    days, tickers = 60, 3
    view = trading_view(
        np.repeat(["A", "B", "C"], days),
        np.tile(np.arange(days), tickers),
        (rng.random(days * tickers) < 0.6).astype(int),
        rng.normal(0.001, 0.01, days * tickers),
        horizon=5,
        cost_per_trade=0.0005,
        level=0.9,
        seed=3,
    )
    doc = view.to_dict()
    for key, stats in (("sharpe_ci", view.strategy), ("buy_and_hold_sharpe_ci", view.buy_and_hold)):
        ci = doc[key]
        assert ci["estimate"] == pytest.approx(stats["sharpe"])
        assert ci["low"] < ci["estimate"] < ci["high"] and ci["level"] == 0.9
        assert ci["n_days"] == days
    assert doc["sharpe_difference"] == pytest.approx(
        view.strategy["sharpe"] - view.buy_and_hold["sharpe"]
    )
    assert doc["sharpe_difference_ci"]["low"] < doc["sharpe_difference"]
    assert doc["sharpe_difference"] < doc["sharpe_difference_ci"]["high"]


def test_no_sharpe_interval_for_a_strategy_that_never_trades():
    hold = np.random.default_rng(0).normal(0.0, 0.01, 50)
    mine, buy_hold, difference = sharpe_intervals(np.zeros(50), hold)
    assert mine is None and difference is None
    assert buy_hold is not None


# ----------------------------------------------------------------------------- interface


def _rows(seed: int = 0, days: int = 100, tickers: int = 5):
    rng = np.random.default_rng(seed)
    dates = np.repeat(np.arange(days), tickers)
    market = np.repeat(rng.random(days) < 0.5, tickers)  # rows of a day move together
    y = np.where(rng.random(dates.size) < 0.7, market, ~market)
    return rng, dates, y


def test_at_horizon_one_it_is_the_student_t_interval_of_the_daily_scores():
    """With non-overlapping labels and equal rows per day, the interval is the textbook
    one: mean daily accuracy +- t(n_days - 1) * sd / sqrt(n_days)."""
    from scipy.stats import t

    rng, dates, y = _rows()
    pred = rng.random(y.size) < 0.5
    interval = metric_interval("accuracy", confusion_indicators(y, pred), dates, horizon=1)
    daily = (pred == y).reshape(100, 5).mean(axis=1)
    half = t.ppf(0.975, 99) * daily.std(ddof=1) / math.sqrt(100)
    assert interval.estimate == pytest.approx(daily.mean())
    assert (interval.low, interval.high) == pytest.approx(
        (daily.mean() - half, daily.mean() + half)
    )
    assert interval.df == 99 and interval.effective_n == 100 and interval.n_days == 100


def test_rows_summed_per_day_give_the_same_interval():
    rng, dates, y = _rows(seed=1)
    counts = confusion_indicators(y, rng.random(y.size) < 0.5)
    by_row = metric_interval("precision", counts, dates, horizon=5)
    per_day = np.stack([counts[dates == d].sum(axis=0) for d in range(100)])
    assert metric_interval("precision", per_day, np.arange(100), horizon=5) == by_row


def test_longer_horizons_mean_fewer_independent_outcomes_and_wider_intervals():
    rng, dates, y = _rows(seed=2)
    counts = confusion_indicators(y, np.ones_like(y))  # always up: as persistent as labels
    one, five, twenty = (metric_interval("accuracy", counts, dates, horizon=h) for h in (1, 5, 20))
    assert one.high - one.low < five.high - five.low < twenty.high - twenty.low
    assert [i.effective_n for i in (one, five, twenty)] == [100, 20, 5]
    assert five.df == pytest.approx(100 / 9) and twenty.df == pytest.approx(100 / 39)
    assert "19 days apart" in twenty.method


def test_whole_range_give_the_whole_range_and_say_so():
    rng, dates, y = _rows(days=30)
    counts = confusion_indicators(y, rng.random(y.size) < 0.5)
    interval = metric_interval("accuracy", counts, dates, horizon=20)
    assert (interval.low, interval.high) == (0.0, 1.0)
    assert interval.whole_range and interval.df is None
    assert "fewer than 40 days" in interval.method
    diff = paired_difference_interval("f1", counts, counts, dates, horizon=20)
    assert (diff.low, diff.high) == (-1.0, 1.0)


def test_level_sets_the_width():
    rng, dates, y = _rows(seed=3)
    counts = confusion_indicators(y, rng.random(y.size) < 0.5)
    wide = metric_interval("accuracy", counts, dates, horizon=5, level=0.95)
    narrow = metric_interval("accuracy", counts, dates, horizon=5, level=0.90)
    assert wide.low < narrow.low < narrow.estimate < narrow.high < wide.high
    assert narrow.level == 0.90 and narrow.to_dict()["level"] == 0.90
    with pytest.raises(ValueError, match="level"):
        metric_interval("accuracy", counts, dates, horizon=5, level=95)


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1"])
def test_paired_difference_estimate_is_the_difference_of_the_metrics(metric: str):
    rng, dates, y = _rows(seed=4)
    proba_a, proba_b = rng.random(y.size), np.clip(rng.random(y.size) + 0.2, 0, 1)
    a = confusion_indicators(y, proba_a >= 0.5)
    b = confusion_indicators(y, proba_b >= 0.5)
    interval = paired_difference_interval(metric, a, b, dates, horizon=3)
    expected = scored_metrics(y, proba_a)[metric] - scored_metrics(y, proba_b)[metric]
    assert interval.estimate == pytest.approx(expected)
    assert -1 <= interval.low < interval.estimate < interval.high <= 1
    swapped = paired_difference_interval(metric, b, a, dates, horizon=3)
    assert (swapped.low, swapped.high) == pytest.approx((-interval.high, -interval.low))


def test_identical_predictors_differ_by_exactly_zero():
    rng, dates, y = _rows(seed=5)
    counts = confusion_indicators(y, rng.random(y.size) < 0.5)
    interval = paired_difference_interval("accuracy", counts, counts, dates, horizon=5)
    assert (interval.low, interval.estimate, interval.high) == (0.0, 0.0, 0.0)


def test_a_paired_interval_sees_an_edge_that_the_market_move_would_hide():
    """A model that calls up like always-up except on a few rows, where it calls the true
    direction: both are right or wrong together on most rows (the market's move), so the
    paired difference is much tighter than either model's own interval and shows the edge."""
    rng, dates, y = _rows(seed=6, days=250, tickers=10)
    model = np.where(rng.random(y.size) < 0.1, y, True)
    a = confusion_indicators(y, model)
    b = confusion_indicators(y, np.ones_like(y))
    diff = paired_difference_interval("accuracy", a, b, dates, horizon=1, level=0.9)
    alone = metric_interval("accuracy", a, dates, horizon=1, level=0.9)
    assert diff.low > 0
    assert diff.high - diff.low < (alone.high - alone.low) / 3


def test_auc_difference_interval_centres_on_the_auc_difference():
    rng, dates, y = _rows(seed=7)
    proba_a = np.clip(y * 0.2 + rng.random(y.size) * 0.8, 0, 1)
    proba_b = np.round(rng.random(y.size), 1)  # ties on purpose
    interval = auc_difference_interval(y, proba_a, proba_b, dates, horizon=5)
    expected = roc_auc(y, proba_a) - roc_auc(y, proba_b)
    assert interval.estimate == pytest.approx(expected)
    assert interval.low < expected < interval.high
    one_class = auc_difference_interval(np.ones_like(y), proba_a, proba_b, dates, horizon=5)
    assert one_class.whole_range and (one_class.low, one_class.high) == (-1.0, 1.0)


def test_ratio_interval_of_plain_counts_and_bad_input():
    dates = np.repeat(np.arange(40), 3)
    interval = ratio_interval(np.ones(120), np.full(120, 2.0), dates, horizon=1)
    assert (interval.estimate, interval.low, interval.high) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="count metric"):
        metric_interval("roc_auc", np.zeros((120, 4)), dates, horizon=1)
    with pytest.raises(ValueError, match="columns"):
        metric_interval("accuracy", np.zeros((120, 3)), dates, horizon=1)


def test_effective_sample_size_in_words():
    assert effective_sample_size(106, 20) == pytest.approx(5.3)
    assert effective_sample_sentence(106, 20) == (
        "about 5.3 independent outcomes (106 trading days / horizon 20)"
    )
    assert effective_sample_sentence(125, 1).startswith("about 125 independent outcomes")


def test_interval_to_dict_is_json_ready():
    interval = Interval(0.5, 0.4, 0.6, 0.95, "m", 100, 20.0, 11.1)
    assert interval.to_dict() == {
        "estimate": 0.5,
        "low": 0.4,
        "high": 0.6,
        "level": 0.95,
        "method": "m",
        "n_days": 100,
        "effective_n": 20.0,
        "df": 11.1,
        "whole_range": False,
    }
    assert interval.bounds == (0.4, 0.6)
