"""Benchmark: how often each candidate interval contains the truth, on simulated backtests
where the truth is known.

The market (``marketpredictor_train.testing.factor_market``) is a one-factor random walk:
tickers share the market's move (pairwise correlation ``--correlation``), volatility comes
in calm and turbulent spells, shocks have fat tails, labels are ``close[t+h] > close[t]``
(overlapping for h > 1), and a backtest is ``--days`` trading days (6 months) of
``--tickers`` tickers, scored on the days whose label is complete.

1. Accuracy. Every predictor has no skill, so its true accuracy is exactly 0.5 and a
   paired difference of two of them is exactly 0: always up, the last h-day direction
   (the yesterday's-direction baseline), the market's last h-day direction for every
   ticker, a coin per row, a coin per ticker that keeps its call ~3h days; and two paired
   differences to always-up. Candidates: percentile intervals of arch's moving-block (the
   old rule), stationary and circular block bootstraps; batch means over blocks of 2h days
   with Student t; non-overlapping labels (every h-th day) with Student t; and the
   day-level t interval mptrain uses (``validation.intervals``, run as shipped).
2. Sharpe ratio. With a market drift, the annualised Sharpe ratio of buy-and-hold and of
   three no-skill strategies (staggered positions, as the trading view holds them), and
   each strategy's Sharpe minus buy-and-hold's, paired. The truth comes from one long run
   of the same process. Candidates: percentile intervals of arch's moving-block bootstrap
   (old rule), a stationary bootstrap with mean block 2h, and the stationary bootstrap
   with arch's optimal block length that mptrain uses (``trading.sharpe_intervals``).

Coverage is the share of simulated backtests whose interval contains the truth; its own
noise is about sqrt(p (1 - p) / sims) (0.7 points at 1,000 sims). "below" is the share
whose interval lies wholly above the truth (a no-skill model that would look skilled).

Run: ``uv run python benchmarks/bench_intervals.py`` (``--help`` for the sizes; about
6 minutes on 2 cores with the defaults).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
from arch.bootstrap import CircularBlockBootstrap, MovingBlockBootstrap, StationaryBootstrap
from scipy.stats import t as student_t

from marketpredictor_train.testing.factor_market import (
    factor_log_prices,
    no_skill_calls,
)
from marketpredictor_train.validation.intervals import (
    confusion_indicators,
    metric_interval,
    paired_difference_interval,
)
from marketpredictor_train.validation.trading import TRADING_DAYS_PER_YEAR, sharpe_intervals

Bounds = tuple[np.ndarray, np.ndarray]
PAIRS = (("past_direction", "always_up"), ("market_call", "always_up"))
STRATEGIES = ("past_direction", "coin", "sticky_coin")
SHORT = {
    "always_up": "up",
    "past_direction": "past h",
    "market_call": "market",
    "coin": "coin",
    "sticky_coin": "sticky",
    "buy_and_hold": "hold",
}


def _short(column: str) -> str:
    """Table headings: 'past h-up' is past_direction minus always_up, '-bh' minus hold."""
    first, _, second = column.partition("-")
    return SHORT[first] + (f"-{SHORT.get(second, second)}" if second else "")


# ----------------------------------------------------------------------------- helpers


def _count_matrix(sampler: type, block: float, n_days: int, resamples: int) -> np.ndarray:
    """How often each day appears in each resample (resamples, n_days), one seed for every
    backtest, as the pipeline does."""
    bootstrap = sampler(block, np.zeros(n_days), seed=np.random.default_rng(0))
    counts = np.zeros((resamples, n_days))
    for i in range(resamples):
        counts[i] = np.bincount(bootstrap.update_indices(), minlength=n_days)
    return counts


def _percentile(counts: np.ndarray, num: np.ndarray, den: np.ndarray, level: float) -> Bounds:
    ratios = (counts @ num.T) / (counts @ den.T)  # (resamples, sims)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail], axis=0)
    return low, high


def _grouped_t(num: np.ndarray, den: np.ndarray, group: np.ndarray, level: float) -> Bounds:
    """Student-t interval of sum(num) / sum(den), each group of days one observation."""
    k = int(group.max()) + 1
    if k < 2:
        return np.full(num.shape[0], -np.inf), np.full(num.shape[0], np.inf)
    num_k = np.stack([num[:, group == g].sum(1) for g in range(k)], 1)
    den_k = np.stack([den[:, group == g].sum(1) for g in range(k)], 1)
    total = den_k.sum(1)
    estimate = num_k.sum(1) / total
    resid = num_k - estimate[:, None] * den_k
    se = np.sqrt((resid**2).sum(1) * k / (k - 1)) / total
    half = float(student_t.ppf(0.5 + level / 2, k - 1)) * se
    return estimate - half, estimate + half


def _batch_means(num: np.ndarray, den: np.ndarray, block: int, level: float) -> Bounds:
    n_days = num.shape[1]
    k = max(n_days // block, 1)
    return _grouped_t(num, den, np.minimum(np.arange(n_days) // block, k - 1), level)


def _non_overlapping(num: np.ndarray, den: np.ndarray, horizon: int, level: float) -> Bounds:
    keep = np.arange(0, num.shape[1], horizon)
    return _grouped_t(num[:, keep], den[:, keep], np.arange(keep.size), level)


def _row(name: str, cover: list[float], below: list[float], width: float) -> str:
    cells = "".join(f"{c:12.1%}" for c in cover)
    return f"  {name:34s}{cells}  {min(cover):6.1%}  {max(below):6.1%}  {width:6.3f}"


# ----------------------------------------------------------------------------- accuracy


def accuracy_table(args: argparse.Namespace, horizon: int, rng: np.random.Generator) -> None:
    log_close = factor_log_prices(
        rng,
        sims=args.sims,
        tickers=args.tickers,
        days=horizon + args.days,
        correlation=args.correlation,
    )
    # backtest days are horizon .. horizon + days - 1; those with a complete label score
    calls = no_skill_calls(rng, log_close, horizon)
    n_days = args.days - horizon
    label = (log_close[..., 2 * horizon :] > log_close[..., horizon:-horizon])[..., :n_days]
    right = {name: (call[..., :n_days] == label) for name, call in calls.items()}
    den = np.full((args.sims, n_days), float(args.tickers))
    num = {name: r.sum(axis=1).astype(float) for name, r in right.items()}
    columns = [*calls, *(f"{a}-{b}" for a, b in PAIRS)]

    def cases() -> list[tuple[np.ndarray, np.ndarray, float]]:
        # (numerator, denominator, truth) per column; a difference's denominator is shared
        out = [(num[name], den, 0.5) for name in calls]
        out += [(num[a] - num[b], den, 0.0) for a, b in PAIRS]
        return out

    block = max(horizon, math.ceil(n_days ** (1 / 3)))
    long_block = max(2 * horizon, 2)
    candidates: dict[str, Callable[[np.ndarray, np.ndarray], Bounds]] = {}
    for name, sampler, size in (
        ("moving block max(h, n^1/3), pct", MovingBlockBootstrap, block),
        ("stationary mean 2h, percentile", StationaryBootstrap, long_block),
        ("circular block 2h, percentile", CircularBlockBootstrap, min(long_block, n_days)),
    ):
        counts = _count_matrix(sampler, size, n_days, args.resamples)
        candidates[name] = lambda n, d, c=counts: _percentile(c, n, d, args.level)
    candidates["batch means 2h, t"] = lambda n, d: _batch_means(n, d, long_block, args.level)
    candidates["non-overlapping labels, t"] = lambda n, d: _non_overlapping(
        n, d, horizon, args.level
    )

    print(
        f"\nh = {horizon}: {n_days} scored days, about {n_days / horizon:.1f} independent "
        f"outcomes (days / horizon)"
    )
    print(
        f"  {'method':34s}"
        + "".join(f"{_short(c):>12s}" for c in columns)
        + "     min   below   width"
    )
    for name, make in candidates.items():
        cover, below = [], []
        for n, d, truth in cases():
            low, high = make(n, d)
            cover.append(float(np.mean((low <= truth) & (truth <= high))))
            below.append(float(np.mean(low > truth)))
        low, high = make(num["always_up"], den)
        width = float(np.mean(np.minimum(high, 1) - np.maximum(low, 0)))
        print(_row(name, cover, below, width))
    shipped = _shipped_accuracy(
        args, horizon, label, {k: c[..., :n_days] for k, c in calls.items()}
    )
    print(_row("mptrain: day-level t (shipped)", *shipped))


def _shipped_accuracy(
    args: argparse.Namespace, horizon: int, label: np.ndarray, calls: dict[str, np.ndarray]
) -> tuple[list[float], list[float], float]:
    """Coverage of ``validation.intervals`` called once per simulated backtest, on rows
    ordered ticker by ticker as the pipeline's are."""
    n_days = label.shape[-1]
    dates = np.tile(np.arange(n_days), args.tickers)
    covered: dict[str, list[bool]] = {}
    below: dict[str, list[bool]] = {}
    widths = []
    for s in range(args.sims):
        y = label[s].ravel()
        counts = {name: confusion_indicators(y, call[s].ravel()) for name, call in calls.items()}
        for name, c in counts.items():
            interval = metric_interval("accuracy", c, dates, horizon=horizon, level=args.level)
            covered.setdefault(name, []).append(interval.low <= 0.5 <= interval.high)
            below.setdefault(name, []).append(interval.low > 0.5)
            if name == "always_up":
                widths.append(interval.high - interval.low)
        for a, b in PAIRS:
            interval = paired_difference_interval(
                "accuracy", counts[a], counts[b], dates, horizon=horizon, level=args.level
            )
            key = f"{a}-{b}"
            covered.setdefault(key, []).append(interval.low <= 0 <= interval.high)
            below.setdefault(key, []).append(interval.low > 0)
    cover = [float(np.mean(v)) for v in covered.values()]
    return cover, [float(np.mean(v)) for v in below.values()], float(np.mean(widths))


# ----------------------------------------------------------------------------- Sharpe


def _daily_returns(log_close: np.ndarray, horizon: int, days: int, calls: dict) -> dict:
    """The trading view's daily returns: equal weight across tickers; a strategy holds the
    mean of its last ``horizon`` calls (flat before the backtest); the last day earns 0."""
    step = np.expm1(np.diff(log_close, axis=-1))[..., horizon : horizon + days]
    if step.shape[-1] < days:
        step = np.concatenate([step, np.zeros((*step.shape[:-1], 1))], axis=-1)
    out = {"buy_and_hold": step.mean(axis=1)}
    for name in STRATEGIES:
        call = calls[name][..., :days].astype(float)
        padded = np.concatenate([np.zeros((*call.shape[:-1], horizon)), call], axis=-1)
        total = np.cumsum(padded, axis=-1)
        position = (total[..., horizon:] - total[..., :-horizon]) / horizon
        out[name] = (position * step).mean(axis=1)
    return out


def _sharpe(daily: np.ndarray) -> np.ndarray:
    return daily.mean(-1) / daily.std(-1, ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR)


def sharpe_table(args: argparse.Namespace, horizon: int, rng: np.random.Generator) -> None:
    drift = args.market_sharpe / math.sqrt(TRADING_DAYS_PER_YEAR) * 0.01
    long_run = 200_000
    log_close = factor_log_prices(
        rng, sims=1, tickers=args.tickers, days=long_run + horizon + 1, market_drift=drift
    )
    daily = _daily_returns(log_close, horizon, long_run, no_skill_calls(rng, log_close, horizon))
    truth = {name: float(_sharpe(series)[0]) for name, series in daily.items()}
    for name in STRATEGIES:
        truth[f"{name}-buy_and_hold"] = truth[name] - truth["buy_and_hold"]

    sims = args.sharpe_sims
    log_close = factor_log_prices(
        rng, sims=sims, tickers=args.tickers, days=horizon + args.days + 1, market_drift=drift
    )
    daily = _daily_returns(log_close, horizon, args.days, no_skill_calls(rng, log_close, horizon))
    columns = ["buy_and_hold", *STRATEGIES, *(f"{name}-buy_and_hold" for name in STRATEGIES)]
    print(
        f"\nh = {horizon}: Sharpe over {args.days} days; truth "
        + ", ".join(f"{_short(c)} {truth[c]:+.2f}" for c in columns)
    )
    print(
        f"  {'method':34s}"
        + "".join(f"{_short(c):>12s}" for c in columns)
        + "     min   below   width"
    )
    n = args.days
    annual = math.sqrt(TRADING_DAYS_PER_YEAR)
    for name, sampler, size in (
        ("moving block max(h, n^1/3), pct", MovingBlockBootstrap, max(horizon, 5)),
        ("stationary mean 2h, percentile", StationaryBootstrap, max(2 * horizon, 2)),
    ):
        counts = _count_matrix(sampler, size, n, args.resamples)

        def resampled(x: np.ndarray, c: np.ndarray = counts) -> np.ndarray:
            mean = (c @ x.T) / n
            var = ((c @ (x**2).T) / n - mean**2) * n / (n - 1)
            return mean / np.sqrt(var) * annual

        samples = {k: resampled(v) for k, v in daily.items()}
        for s in STRATEGIES:
            samples[f"{s}-buy_and_hold"] = samples[s] - samples["buy_and_hold"]
        tail = (1 - args.level) / 2 * 100
        cover, below = [], []
        for col in columns:
            low, high = np.percentile(samples[col], [tail, 100 - tail], axis=0)
            cover.append(float(np.mean((low <= truth[col]) & (truth[col] <= high))))
            below.append(float(np.mean(low > truth[col])))
        low, high = np.percentile(samples["buy_and_hold"], [tail, 100 - tail], axis=0)
        print(_row(name, cover, below, float(np.mean(high - low))))

    hits: dict[str, list[bool]] = {c: [] for c in columns}
    above: dict[str, list[bool]] = {c: [] for c in columns}
    widths = []
    for s in range(sims):
        for strategy in STRATEGIES:
            mine, hold, diff = sharpe_intervals(
                daily[strategy][s],
                daily["buy_and_hold"][s],
                level=args.level,
                resamples=args.resamples,
                seed=0,
            )
            results = [(strategy, mine), (f"{strategy}-buy_and_hold", diff)]
            if strategy == STRATEGIES[0]:
                results.append(("buy_and_hold", hold))
                widths.append(np.nan if hold is None else hold.high - hold.low)
            for col, interval in results:
                ok = interval is not None and interval.low <= truth[col] <= interval.high
                hits[col].append(ok)
                above[col].append(interval is not None and interval.low > truth[col])
    cover = [float(np.mean(hits[c])) for c in columns]
    print(
        _row(
            "mptrain: stationary, arch optimal",
            cover,
            [float(np.mean(above[c])) for c in columns],
            float(np.nanmean(widths)),
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=1000, help="simulated backtests (accuracy)")
    parser.add_argument("--sharpe-sims", type=int, default=400, help="simulated backtests (Sharpe)")
    parser.add_argument("--tickers", type=int, default=15)
    parser.add_argument("--days", type=int, default=126, help="backtest trading days (6 months)")
    parser.add_argument("--correlation", type=float, default=0.4, help="between two tickers")
    parser.add_argument("--level", type=float, default=0.95)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--horizons", default="1,5,20,60")
    parser.add_argument("--sharpe-horizons", default="1,5,20", help="'' to skip part 2")
    parser.add_argument(
        "--market-sharpe", type=float, default=0.6, help="annualised, for the Sharpe part"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    print(
        f"Coverage of nominal {args.level:.0%} intervals: {args.sims} simulated backtests of "
        f"{args.tickers} tickers x {args.days} trading days, correlation {args.correlation}; "
        "columns are the predictors, 'min' the worst of them, 'below' the largest share "
        "of intervals wholly above the truth, 'width' the mean width for always-up."
    )
    print("\n1. Accuracy of no-skill predictors (truth 0.5; paired differences, truth 0)")
    for horizon in (int(h) for h in args.horizons.split(",") if h):
        accuracy_table(args, horizon, rng)
    print(
        f"\n2. Annualised Sharpe ratio, market Sharpe {args.market_sharpe}, "
        f"{args.sharpe_sims} simulated backtests (width: buy and hold)"
    )
    for horizon in (int(h) for h in args.sharpe_horizons.split(",") if h):
        sharpe_table(args, horizon, rng)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
