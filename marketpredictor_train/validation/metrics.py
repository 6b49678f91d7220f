"""Classification and probability metrics of direction predictions, each with its sample
size, and the confidence intervals and paired test that say how much they can be trusted."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

SEED_METRICS = ("accuracy", "precision", "recall", "f1")
PROBABILITY_METRICS = ("roc_auc", "log_loss", "brier")
# Metrics where a smaller value is better; every other one is "higher is better".
LOWER_IS_BETTER = frozenset({"log_loss", "brier"})
DECISION_THRESHOLD = 0.5
"""P(up) at or above which a model says "up". Fixed, never tuned on any rows, so it
cannot carry information from the backtest into the model."""

_LOG_LOSS_EPS = 1e-15


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | int]:
    """Accuracy, precision, recall and F1 of the 'up' class, plus n_samples.

    Precision (recall) is 0 when nothing is predicted (is actually) up, as scikit-learn's
    zero_division=0 does, so a model that never says 'up' cannot pass a precision bar."""
    import numpy as np

    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    n = int(y_true.size)
    tp, fp, fn, tn = confusion_counts(y_true, y_pred)
    return {**_ratios(tp, fp, fn, tn), "n_samples": n}


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[int, int, int, int]:
    """(true positives, false positives, false negatives, true negatives) of 'up'."""
    import numpy as np

    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    tp = int(np.sum((y_pred == 1) & (y_true == 1)))
    fp = int(np.sum((y_pred == 1) & (y_true == 0)))
    fn = int(np.sum((y_pred == 0) & (y_true == 1)))
    tn = int(np.sum((y_pred == 0) & (y_true == 0)))
    return tp, fp, fn, tn


def _ratios(tp: float, fp: float, fn: float, tn: float) -> dict[str, float]:
    n = tp + fp + fn + tn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": float((tp + tn) / n) if n else 0.0,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }


def metric_from_counts(name: str, counts: np.ndarray) -> np.ndarray:
    """``name`` (a seed metric) from confusion counts in the last axis (tp, fp, fn, tn),
    vectorised over the leading axes (bootstrap resamples)."""
    import numpy as np

    tp, fp, fn, tn = (counts[..., i].astype(float) for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "accuracy":
            out = (tp + tn) / (tp + fp + fn + tn)
        elif name == "precision":
            out = tp / (tp + fp)
        elif name == "recall":
            out = tp / (tp + fn)
        elif name == "f1":
            out = 2 * tp / (2 * tp + fp + fn)
        else:
            raise ValueError(f"{name} is not a count metric")
    return np.nan_to_num(out, nan=0.0)


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties averaged); None with only one class."""
    import numpy as np
    from scipy.stats import rankdata

    y_true = np.asarray(y_true).astype(int)
    n_pos = int(y_true.sum())
    n_neg = int(y_true.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(np.asarray(proba, dtype=float))
    return float((ranks[y_true == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    import numpy as np

    y = np.asarray(y_true, dtype=float)
    p = np.clip(np.asarray(proba, dtype=float), _LOG_LOSS_EPS, 1 - _LOG_LOSS_EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if y.size else 0.0


def brier(y_true: np.ndarray, proba: np.ndarray) -> float:
    import numpy as np

    y = np.asarray(y_true, dtype=float)
    p = np.asarray(proba, dtype=float)
    return float(np.mean((p - y) ** 2)) if y.size else 0.0


def scored_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Every metric of one model's P(up) on labelled rows: the seed's four (at the fixed
    0.5 decision threshold), ROC AUC, log loss, Brier score, the confusion counts, the
    share of rows that went up and that the model called up, and n_samples."""
    import numpy as np

    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=float)
    pred = (p >= DECISION_THRESHOLD).astype(int)
    tp, fp, fn, tn = confusion_counts(y, pred)
    n = int(y.size)
    return {
        **_ratios(tp, fp, fn, tn),
        "roc_auc": roc_auc(y, p),
        "log_loss": log_loss(y, p),
        "brier": brier(y, p),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "up_rate": float(y.mean()) if n else 0.0,
        "predicted_up_rate": float(pred.mean()) if n else 0.0,
        "n_samples": n,
    }


def prediction_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """The seed's four, the confusion counts and n_samples of hard 0/1 predictions (for
    baselines, which have no probabilities)."""
    import numpy as np

    y = np.asarray(y_true).astype(int)
    pred = np.asarray(y_pred).astype(int)
    tp, fp, fn, tn = confusion_counts(y, pred)
    return {
        **_ratios(tp, fp, fn, tn),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "predicted_up_rate": float(pred.mean()) if pred.size else 0.0,
        "n_samples": int(y.size),
    }


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (assumes independent rows)."""
    from scipy.stats import norm

    if n == 0:
        return 0.0, 1.0
    z = float(norm.ppf(0.5 + level / 2))
    phat = successes / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_midp(new_only_correct: int, production_only_correct: int) -> float:
    """Two-sided mid-p McNemar test of two classifiers on the same rows, from the
    discordant pairs (rows exactly one of them got right). 1.0 when there are none."""
    from scipy.stats import binom

    n = new_only_correct + production_only_correct
    if n == 0:
        return 1.0
    k = min(new_only_correct, production_only_correct)
    p = 2 * (float(binom.cdf(k, n, 0.5)) - 0.5 * float(binom.pmf(k, n, 0.5)))
    return min(1.0, max(0.0, p))


def calibration_bins(y_true: np.ndarray, proba: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Reliability table: for each equal-width bin of P(up) holding rows, the mean
    predicted probability, the observed share of ups and the row count."""
    import numpy as np

    y = np.asarray(y_true, dtype=float)
    p = np.asarray(proba, dtype=float)
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        if n == 0:
            continue
        out.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "mean_predicted": float(p[mask].mean()),
                "fraction_up": float(y[mask].mean()),
                "n_samples": n,
            }
        )
    return out
