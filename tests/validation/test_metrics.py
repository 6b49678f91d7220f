"""The numbers behind every report: metrics against scikit-learn, the Wilson interval,
McNemar's mid-p, the day-block bootstrap and calibration bins."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from marketpredictor_train.validation.bootstrap import day_blocks, percentile_interval
from marketpredictor_train.validation.metrics import (
    calibration_bins,
    mcnemar_midp,
    metric_from_counts,
    scored_metrics,
    wilson_interval,
)


@pytest.fixture
def scored():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    proba = np.clip(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.2, 500), 0.01, 0.99)
    return y, proba


def test_scored_metrics_agree_with_scikit_learn(scored):
    y, proba = scored
    pred = (proba >= 0.5).astype(int)
    m = scored_metrics(y, proba)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, proba))
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (tp, fp, fn, tn)
    assert m["n_samples"] == 500


def test_roc_auc_is_undefined_with_one_class():
    assert scored_metrics(np.ones(10, dtype=int), np.linspace(0, 1, 10))["roc_auc"] is None


def test_metric_from_counts_matches_the_row_level_metrics(scored):
    y, proba = scored
    m = scored_metrics(y, proba)
    counts = np.array([m["tp"], m["fp"], m["fn"], m["tn"]])
    for name in ("accuracy", "precision", "recall", "f1"):
        assert metric_from_counts(name, counts) == pytest.approx(m[name])


def test_wilson_interval_known_value():
    # 50 of 100: the textbook Wilson 95% interval is 0.4038 .. 0.5962
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4)
    assert high == pytest.approx(0.5962, abs=1e-4)


def test_mcnemar_mid_p_known_values():
    assert mcnemar_midp(0, 0) == 1.0
    # b=1, c=5 (n=6): exact two-sided p = 2 * 7/64 = 0.21875; mid-p = 0.21875 - 6/64
    assert mcnemar_midp(1, 5) == pytest.approx(0.21875 - 6 / 64)
    assert mcnemar_midp(5, 1) == mcnemar_midp(1, 5)
    assert mcnemar_midp(40, 5) < 1e-6


def test_day_blocks_resample_whole_days_in_blocks():
    dates = np.repeat(np.arange(120), 4)  # 120 days, 4 tickers each
    blocks = day_blocks(dates, horizon=1, resamples=50, seed=1)
    assert blocks.n_days == 120
    assert blocks.block_days == 5  # ceil(120 ** (1/3))
    assert blocks.draws.shape == (50, 120)
    # consecutive days inside every block
    first_block = blocks.draws[:, :5]
    assert np.all(np.diff(first_block, axis=1) == 1)
    # a horizon longer than the n^(1/3) rule sets the block length
    assert day_blocks(dates, horizon=10, resamples=5).block_days == 10
    totals = blocks.resampled_totals(np.ones(dates.size))
    assert np.all(totals[:, 0] == 480)  # every resample has as many days as the original


def test_day_block_interval_is_wider_than_wilson_when_days_move_together():
    """Rows of one day that share an outcome (the market moved) carry less information
    than independent rows: the day-block interval must see that, Wilson cannot."""
    rng = np.random.default_rng(0)
    days = 126
    day_outcome = rng.random(days) < 0.5
    dates = np.repeat(np.arange(days), 20)
    correct = np.repeat(day_outcome, 20).astype(float)
    blocks = day_blocks(dates, horizon=1, seed=2)
    totals = blocks.resampled_totals(np.column_stack([correct, np.ones_like(correct)]))
    low, high = percentile_interval(totals[:, 0] / totals[:, 1])
    w_low, w_high = wilson_interval(int(correct.sum()), correct.size)
    assert high - low > 3 * (w_high - w_low)
    assert low < correct.mean() < high


def test_calibration_bins_count_every_row(scored):
    y, proba = scored
    bins = calibration_bins(y, proba)
    assert sum(b["n_samples"] for b in bins) == y.size
    for b in bins:
        assert b["low"] <= b["mean_predicted"] < b["high"] or b["high"] == 1.0
        assert 0.0 <= b["fraction_up"] <= 1.0
