"""Purged walk-forward folds: strictly chronological, purged by at least the horizon, and
confined to the training part."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketpredictor_train.errors import ConfigError, TrainingError
from marketpredictor_train.tuning.cv import walk_forward_folds


def _panel(n_days: int, n_tickers: int = 3, seed: int = 0):
    """Rows of several tickers over business days, in (ticker, date) order like a Dataset."""
    days = np.array(
        [
            np.datetime64(dt.date(2015, 1, 1)) + np.timedelta64(i, "D")
            for i in range(n_days * 7 // 5 + 7)
        ]
    )
    days = days[np.is_busday(days)][:n_days]
    dates = np.tile(days, n_tickers)
    labels = np.random.default_rng(seed).integers(0, 2, size=len(dates))
    return dates, labels


def _gap_in_trading_days(dates: np.ndarray, fold) -> int:
    calendar = np.unique(dates)
    last_train = np.searchsorted(calendar, np.datetime64(fold.train_end))
    first_valid = np.searchsorted(calendar, np.datetime64(fold.valid_start))
    return int(first_valid - last_train - 1)


@settings(max_examples=40, deadline=None)
@given(
    n_days=st.integers(450, 900),
    n_folds=st.integers(2, 6),
    purge_gap=st.integers(1, 10),
)
def test_folds_are_chronological_purged_and_disjoint(n_days, n_folds, purge_gap):
    dates, labels = _panel(n_days)
    folds = walk_forward_folds(dates, labels, n_folds=n_folds, purge_gap=purge_gap)
    assert len(folds) == n_folds
    previous_valid_end = None
    for fold in folds:
        train_dates = dates[fold.train_rows]
        valid_dates = dates[fold.valid_rows]
        # every training row is before every validation row, by at least the purge gap
        assert train_dates.max() < valid_dates.min()
        assert _gap_in_trading_days(dates, fold) == purge_gap
        # validation blocks follow each other without overlap
        if previous_valid_end is not None:
            assert valid_dates.min() > previous_valid_end
        previous_valid_end = valid_dates.max()
    # expanding window: each fold trains on everything the previous one did
    for earlier, later in zip(folds, folds[1:], strict=False):
        assert set(earlier.train_rows) < set(later.train_rows)
    # the last validation block ends on the last date given: nothing beyond is touched
    assert previous_valid_end == dates.max()


def test_purge_gap_of_the_horizon_drops_exactly_the_overlapping_labels():
    dates, labels = _panel(500)
    folds = walk_forward_folds(dates, labels, n_folds=4, purge_gap=5)
    calendar = np.unique(dates)
    for fold in folds:
        first_valid = np.searchsorted(calendar, np.datetime64(fold.valid_start))
        # a row on the last training date has a label 5 days ahead: still before validation
        assert np.searchsorted(calendar, np.datetime64(fold.train_end)) + 5 < first_valid


def test_too_few_days_for_the_folds_is_a_training_error():
    dates, labels = _panel(60)
    with pytest.raises(TrainingError, match="walk-forward folds"):
        walk_forward_folds(dates, labels, n_folds=6, purge_gap=5)


def test_one_class_in_a_fold_is_a_training_error():
    dates, _ = _panel(400)
    with pytest.raises(TrainingError):
        walk_forward_folds(dates, np.ones(len(dates), dtype=int), n_folds=3, purge_gap=1)


@pytest.mark.parametrize(("n_folds", "purge_gap"), [(1, 1), (3, 0)])
def test_bad_fold_settings_are_config_errors(n_folds, purge_gap):
    dates, labels = _panel(400)
    with pytest.raises(ConfigError):
        walk_forward_folds(dates, labels, n_folds=n_folds, purge_gap=purge_gap)


def test_folds_of_the_real_dataset_stay_inside_the_training_part(small_dataset):
    dates = small_dataset.train.get_column("date").to_numpy()
    y = small_dataset.train.get_column("label").to_numpy()
    folds = walk_forward_folds(dates, y, n_folds=3, purge_gap=1)
    assert max(f.valid_end for f in folds) == small_dataset.window.train_end
    assert max(f.valid_end for f in folds) < small_dataset.window.backtest_start
