"""Purged walk-forward folds: strictly chronological, purged by at least the horizon, and
confined to the training part."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketpredictor_train.errors import ConfigError, TrainingError
from marketpredictor_train.tuning.cv import (
    MIN_FOLD_TRAIN_ROWS,
    MIN_FOLD_VALID_ROWS,
    last_walk_forward_fold,
    walk_forward_folds,
)


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


def _folds_by_definition(dates, labels, n_folds, purge_gap):
    """Each fold's rows and its checks, written out fold by fold: None when one is too
    small."""
    calendar = np.unique(dates)
    blocks = np.array_split(np.arange(len(calendar)), n_folds + 1)
    if any(len(b) == 0 for b in blocks) or len(blocks[0]) <= purge_gap:
        return None
    day = np.searchsorted(calendar, dates)
    folds = []
    for block in blocks[1:]:
        first, last = block[0], block[-1]
        train = np.flatnonzero(day <= first - 1 - purge_gap)
        valid = np.flatnonzero((day >= first) & (day <= last))
        if (
            len(train) < MIN_FOLD_TRAIN_ROWS
            or len(valid) < MIN_FOLD_VALID_ROWS
            or len(np.unique(labels[train])) < 2
        ):
            return None
        folds.append((train, valid))
    return folds


@settings(max_examples=60, deadline=None)
@given(
    n_days=st.integers(60, 400),
    n_tickers=st.integers(1, 4),
    n_folds=st.integers(2, 6),
    purge_gap=st.integers(1, 8),
    first_down=st.integers(0, 150),
    seed=st.integers(0, 10),
)
def test_the_folds_sizes_checked_from_rows_per_day_are_the_folds_own(
    n_days, n_tickers, n_folds, purge_gap, first_down, seed
):
    """Sizes near the minimums, and a class first seen late (so early folds have one
    class): the checks made without the folds' rows agree with the folds themselves, and
    the last fold alone is the last of all of them."""
    dates, _ = _panel(n_days, n_tickers, seed)
    labels = np.ones(len(dates), dtype=np.int8)
    order = np.argsort(dates, kind="stable")
    labels[order[first_down::3]] = 0  # no down move before the first_down-th row in time
    expected = _folds_by_definition(dates, labels, n_folds, purge_gap)
    if expected is None:
        with pytest.raises(TrainingError, match="walk-forward folds"):
            walk_forward_folds(dates, labels, n_folds=n_folds, purge_gap=purge_gap)
        with pytest.raises(TrainingError, match="walk-forward folds"):
            last_walk_forward_fold(dates, labels, n_folds=n_folds, purge_gap=purge_gap)
        return
    folds = walk_forward_folds(dates, labels, n_folds=n_folds, purge_gap=purge_gap)
    for fold, (train, valid) in zip(folds, expected, strict=True):
        np.testing.assert_array_equal(fold.train_rows, train)
        np.testing.assert_array_equal(fold.valid_rows, valid)
    last = last_walk_forward_fold(dates, labels, n_folds=n_folds, purge_gap=purge_gap)
    np.testing.assert_array_equal(last.train_rows, folds[-1].train_rows)
    np.testing.assert_array_equal(last.valid_rows, folds[-1].valid_rows)
    assert (last.index, last.train_end, last.valid_start, last.valid_end) == (
        folds[-1].index,
        folds[-1].train_end,
        folds[-1].valid_start,
        folds[-1].valid_end,
    )


def _agrees_with_the_definition(dates, labels, n_folds, purge_gap) -> bool:
    """Whether the folds are usable; raises AssertionError where the folds (or the check
    made without their rows) differ from the definition."""
    expected = _folds_by_definition(dates, labels, n_folds, purge_gap)
    try:
        last = last_walk_forward_fold(dates, labels, n_folds=n_folds, purge_gap=purge_gap)
    except TrainingError:
        assert expected is None
        return False
    assert expected is not None
    np.testing.assert_array_equal(last.train_rows, expected[-1][0])
    return True


def test_the_fold_checks_flip_exactly_at_their_limits():
    """One ticker, so rows are days: the first fold's training rows cross the minimum as
    the data grows, and its second class arrives on either side of its last day."""
    outcomes = set()
    for n_days in range(300, 320):  # 3 blocks of about 100 days
        dates, labels = _panel(n_days, n_tickers=1)
        outcomes.add(_agrees_with_the_definition(dates, labels, 2, 1))
    assert outcomes == {True, False}
    outcomes = set()
    dates, _ = _panel(400, n_tickers=1)
    for first_down in range(125, 140):  # the first fold trains on days 0..131
        labels = np.ones(len(dates), dtype=np.int8)
        labels[first_down:] = 0
        outcomes.add(_agrees_with_the_definition(dates, labels, 2, 1))
    assert outcomes == {True, False}


def test_polars_day_numbers_give_the_folds_of_the_dates():
    import polars as pl

    dates, labels = _panel(500)
    days = pl.Series(dates).cast(pl.Date).to_physical().to_numpy()
    assert days.dtype == np.int32
    for by_date, by_day in zip(
        walk_forward_folds(dates, labels, n_folds=4, purge_gap=3),
        walk_forward_folds(days, labels, n_folds=4, purge_gap=3),
        strict=True,
    ):
        assert by_date.to_dict() == by_day.to_dict()
        np.testing.assert_array_equal(by_date.train_rows, by_day.train_rows)
        np.testing.assert_array_equal(by_date.valid_rows, by_day.valid_rows)


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
