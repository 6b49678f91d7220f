"""Confidence intervals for backtest metrics that stay honest when backtest rows depend on
each other: rows of one day share the market's move, and with a horizon of h days the
labels of days less than h apart overlap (the label at t is close[t+h] > close[t]), so a
backtest of n_days holds only about n_days / h independent outcomes.

How: a metric that is a ratio of row counts (accuracy = correct / rows, precision =
tp / (tp + fp), ...) or ROC AUC is linearised, its contributions are summed per trading
day, and the variance of that day series counts every pair of days less than h apart (the
window where overlapping labels correlate; never less than if days were independent, and
with Bessel's correction for the mean taken over that window). The interval uses Student's
t with n_days / (2h - 1) degrees of freedom, so a few independent outcomes give a wide
interval; with fewer than 2h days there is none narrower than the metric's whole range.
A paired difference (model minus baseline, challenger minus champion) is one day series of
the difference, so what the two share on a day cancels.

Why hand-written rather than ``arch.bootstrap``: on a simulated one-factor market with
overlapping labels and no-skill predictors (``benchmarks/bench_intervals.py``), percentile
intervals of arch's stationary, circular and moving block bootstraps (blocks of one or two
horizons) covered the true accuracy in only 63-85% of backtests at h = 20 and 85-94% at
h = 5 (nominal 95%): resampling about five independent outcomes cannot show how unsure its
own spread is. This interval covered 95-100% at h = 1, 5 and 20 (98-100% for calls that
change every day, which overlap does not affect; the floor at independent days keeps them
from undercovering). The Sharpe ratio, whose
daily returns do not overlap, keeps arch's stationary bootstrap (``bootstrap.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

LEVEL = 0.95
COUNT_METRICS = ("accuracy", "precision", "recall", "f1")
_COUNTS = ("tp", "fp", "fn", "tn")


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence interval of one metric (or of a difference of two) on backtest rows.

    ``effective_n`` is about how many independent outcomes the rows hold (trading days /
    horizon for labels, trading days for daily returns); ``df`` the Student-t degrees of
    freedom (None for a bootstrap interval). ``whole_range`` says the rows could not
    narrow the metric down at all (fewer than 2h days, or one class for ROC AUC): the
    interval is then the metric's whole range."""

    estimate: float
    low: float
    high: float
    level: float
    method: str
    n_days: int
    effective_n: float
    df: float | None = None
    whole_range: bool = False

    @property
    def bounds(self) -> tuple[float, float]:
        return self.low, self.high

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "method": self.method,
            "n_days": self.n_days,
            "effective_n": self.effective_n,
            "df": self.df,
            "whole_range": self.whole_range,
        }


def effective_sample_size(n_days: int, horizon: int) -> float:
    """About how many independent outcomes ``n_days`` of ``horizon``-day labels hold."""
    return n_days / max(horizon, 1)


def effective_sample_sentence(n_days: int, horizon: int) -> str:
    """'about 5 independent outcomes (106 trading days / horizon 20)'."""
    n = effective_sample_size(n_days, horizon)
    shown = f"{n:.0f}" if n >= 10 else f"{n:.1f}"
    return f"about {shown} independent outcomes ({n_days} trading days / horizon {horizon})"


def confusion_indicators(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-row 0/1 columns (tp, fp, fn, tn) of 'up' calls: the counts every count metric
    and its interval are made of."""
    import numpy as np

    y = np.asarray(y_true).astype(bool)
    pred = np.asarray(y_pred).astype(bool)
    return np.column_stack([pred & y, pred & ~y, ~pred & y, ~pred & ~y]).astype(float)


def ratio_interval(
    numerator: np.ndarray,
    denominator: np.ndarray,
    dates: np.ndarray,
    *,
    horizon: int,
    level: float = LEVEL,
) -> Interval:
    """Interval of sum(numerator) / sum(denominator) over rows (one value each; ``dates``
    says which trading day a row belongs to), e.g. accuracy = correct / 1, in [0, 1]."""
    import numpy as np

    days, n_days = _day_index(dates)
    num = _per_day(np.asarray(numerator, dtype=float), days, n_days)
    den = _per_day(np.asarray(denominator, dtype=float), days, n_days)
    total = float(den.sum())
    estimate = float(num.sum()) / total if total else 0.0
    influence = (num - estimate * den) / total if total else np.zeros(n_days)
    return _t_interval(estimate, influence, horizon=horizon, level=level, bounds=(0.0, 1.0))


def metric_interval(
    metric: str,
    counts: np.ndarray,
    dates: np.ndarray,
    *,
    horizon: int,
    level: float = LEVEL,
) -> Interval:
    """Interval of one count metric (accuracy, precision, recall, f1) from per-row
    ``counts`` (n_rows, 4): tp, fp, fn, tn, as :func:`confusion_indicators` makes them.
    For example ``metric_interval("accuracy", confusion_indicators(y, pred), dates,
    horizon=5, level=0.90)``."""
    num, den = _ratio_parts(metric, counts)
    return ratio_interval(num, den, dates, horizon=horizon, level=level)


def paired_difference_interval(
    metric: str,
    counts_a: np.ndarray,
    counts_b: np.ndarray,
    dates: np.ndarray,
    *,
    horizon: int,
    level: float = LEVEL,
) -> Interval:
    """Interval of metric(a) - metric(b) for two predictors scored on the same rows:
    ``counts_a`` and ``counts_b`` are their per-row (tp, fp, fn, tn), ``dates`` the rows'
    trading days. In [-1, 1]; its lower bound above 0 says a is better beyond noise at
    ``level``. For the model minus a naive baseline on the backtest rows::

        model = confusion_indicators(y, proba >= DECISION_THRESHOLD)
        always_up = confusion_indicators(y, np.ones_like(y))
        edge = paired_difference_interval(
            "accuracy", model, always_up, dates, horizon=horizon, level=0.90
        )
        beats_baseline = edge.low > 0  # and edge.whole_range says there was no evidence
    """
    import numpy as np

    days, n_days = _day_index(dates)
    estimate = 0.0
    influence = np.zeros(n_days)
    for counts, sign in ((counts_a, 1.0), (counts_b, -1.0)):
        num, den = _ratio_parts(metric, counts)
        num_day, den_day = _per_day(num, days, n_days), _per_day(den, days, n_days)
        total = float(den_day.sum())
        if total:  # an undefined metric (nothing called up: precision) counts as 0, fixed
            value = float(num_day.sum()) / total
            estimate += sign * value
            influence += sign * (num_day - value * den_day) / total
    return _t_interval(estimate, influence, horizon=horizon, level=level, bounds=(-1.0, 1.0))


def auc_difference_interval(
    y_true: np.ndarray,
    proba_a: np.ndarray,
    proba_b: np.ndarray,
    dates: np.ndarray,
    *,
    horizon: int,
    level: float = LEVEL,
) -> Interval:
    """Interval of ROC AUC(a) - ROC AUC(b) on the same rows, from each row's DeLong
    placement value (the share of the other class it ranks correctly against), summed per
    day. The whole range [-1, 1] when the rows hold only one class."""
    import numpy as np

    y = np.asarray(y_true).astype(bool)
    days, n_days = _day_index(dates)
    if y.all() or not y.any():
        return _whole_range(0.0, n_days, horizon, level, (-1.0, 1.0), "only one class")
    estimate = 0.0
    influence = np.zeros(n_days)
    for proba, sign in ((proba_a, 1.0), (proba_b, -1.0)):
        auc, row_influence = _auc_influence(y, np.asarray(proba, dtype=float))
        estimate += sign * auc
        influence += sign * _per_day(row_influence, days, n_days)
    return _t_interval(estimate, influence, horizon=horizon, level=level, bounds=(-1.0, 1.0))


# ----------------------------------------------------------------------------- the method


def _t_interval(
    estimate: float,
    influence: np.ndarray,
    *,
    horizon: int,
    level: float,
    bounds: tuple[float, float],
) -> Interval:
    """estimate +- t * standard error, where the variance of the estimate is that of the
    sum of its per-day ``influence`` (days in calendar order)."""
    import numpy as np

    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    h = max(int(horizon), 1)
    n_days = int(influence.size)
    window = 2 * h - 1  # days whose labels share part of their future: lags -(h-1)..h-1
    if n_days <= window:
        return _whole_range(estimate, n_days, h, level, bounds, f"fewer than {2 * h} days")
    independent = float(np.sum(influence**2))
    variance = independent + 2 * sum(
        float(np.dot(influence[k:], influence[:-k])) for k in range(1, h)
    )
    variance = max(variance, independent) * n_days / (n_days - window)
    df = n_days / window if h > 1 else n_days - 1.0
    half = _t_quantile(0.5 + level / 2, df) * float(np.sqrt(variance))
    method = (
        f"day-level t interval over {n_days} trading days"
        + (f", counting label overlap up to {h - 1} days apart" if h > 1 else "")
        + f", Student t with {df:.1f} df"
    )
    return Interval(
        estimate=estimate,
        low=max(bounds[0], estimate - half),
        high=min(bounds[1], estimate + half),
        level=level,
        method=method,
        n_days=n_days,
        effective_n=effective_sample_size(n_days, h),
        df=df,
    )


@lru_cache(maxsize=256)
def _t_quantile(probability: float, df: float) -> float:
    from scipy.stats import t as student_t

    return float(student_t.ppf(probability, df))


def _whole_range(
    estimate: float,
    n_days: int,
    horizon: int,
    level: float,
    bounds: tuple[float, float],
    why: str,
) -> Interval:
    return Interval(
        estimate=estimate,
        low=bounds[0],
        high=bounds[1],
        level=level,
        method=f"no interval narrower than the whole range ({why})",
        n_days=n_days,
        effective_n=effective_sample_size(n_days, horizon),
        whole_range=True,
    )


def _day_index(dates: np.ndarray) -> tuple[np.ndarray, int]:
    import numpy as np

    distinct, day_of_row = np.unique(np.asarray(dates), return_inverse=True)
    return day_of_row.ravel(), int(distinct.size)


def _per_day(values: np.ndarray, days: np.ndarray, n_days: int) -> np.ndarray:
    import numpy as np

    return np.bincount(days, weights=np.asarray(values, dtype=float), minlength=n_days)


def _ratio_parts(metric: str, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row numerator and denominator of ``metric`` from (tp, fp, fn, tn) columns."""
    import numpy as np

    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[1] != len(_COUNTS):
        raise ValueError(f"counts must have columns {_COUNTS}, got shape {counts.shape}")
    tp, fp, fn, tn = counts.T
    if metric == "accuracy":
        return tp + tn, tp + fp + fn + tn
    if metric == "precision":
        return tp, tp + fp
    if metric == "recall":
        return tp, tp + fn
    if metric == "f1":
        return 2 * tp, 2 * tp + fp + fn
    raise ValueError(f"{metric} is not a count metric (one of {', '.join(COUNT_METRICS)})")


def _auc_influence(y: np.ndarray, proba: np.ndarray) -> tuple[float, np.ndarray]:
    """ROC AUC and each row's linear contribution to it (DeLong): for an 'up' row, the
    share of 'down' rows it outranks (ties half) minus the AUC, over the number of 'up'
    rows; the same the other way round for a 'down' row."""
    import numpy as np
    from scipy.stats import rankdata

    n_up, n_down = int(y.sum()), int((~y).sum())
    rank_all = rankdata(proba)
    placement = np.empty(y.size)
    placement[y] = (rank_all[y] - rankdata(proba[y])) / n_down
    placement[~y] = (n_up - (rank_all[~y] - rankdata(proba[~y]))) / n_up
    auc = float(placement[y].mean())
    influence = np.where(y, (placement - auc) / n_up, (placement - auc) / n_down)
    return auc, influence
