"""The chronological train | purge gap | backtest split (dataset.split), called directly:
the calendar-month arithmetic of the backtest start, the purge gap counted in trading days,
and the errors for settings or data that leave nothing to train on."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import polars as pl
import pytest

from marketpredictor_train.dataset.split import (
    SplitWindow,
    backtest_start_date,
    chronological_split,
)
from marketpredictor_train.errors import ConfigError, TrainingError


def every_day(first: dt.date, last: dt.date) -> list[dt.date]:
    """A calendar that trades every day: the backtest starts the day after the cutoff."""
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def weekdays(first: dt.date, last: dt.date) -> list[dt.date]:
    return [d for d in every_day(first, last) if d.weekday() < 5]


def cutoff_of(last: dt.date, months: int) -> dt.date:
    """The cutoff backtest_start_date computed, read off a calendar with every day in it."""
    start = backtest_start_date(every_day(last - dt.timedelta(days=800), last), months)
    return start - dt.timedelta(days=1)


# ----------------------------------------------------------------- backtest_start_date


@pytest.mark.parametrize(
    ("last", "months", "cutoff"),
    [
        # across the year boundary
        (dt.date(2024, 2, 15), 6, dt.date(2023, 8, 15)),
        (dt.date(2024, 1, 10), 1, dt.date(2023, 12, 10)),
        # month arithmetic landing exactly on month 0 (December of the year before)
        (dt.date(2024, 6, 15), 6, dt.date(2023, 12, 15)),
        (dt.date(2024, 12, 15), 12, dt.date(2023, 12, 15)),
        # whole years
        (dt.date(2024, 2, 15), 12, dt.date(2023, 2, 15)),
        (dt.date(2024, 2, 15), 24, dt.date(2022, 2, 15)),
        (dt.date(2024, 2, 15), 14, dt.date(2022, 12, 15)),
        # within one year
        (dt.date(2024, 9, 20), 3, dt.date(2024, 6, 20)),
    ],
)
def test_cutoff_subtracts_calendar_months(last, months, cutoff):
    """The cutoff is the last date minus ``months`` calendar months (same day of month),
    wrapping into earlier years as needed."""
    assert cutoff_of(last, months) == cutoff


@pytest.mark.parametrize(
    ("last", "months", "cutoff"),
    [
        (dt.date(2024, 3, 31), 1, dt.date(2024, 2, 29)),  # leap year
        (dt.date(2023, 3, 31), 1, dt.date(2023, 2, 28)),  # common year
        (dt.date(2100, 3, 31), 1, dt.date(2100, 2, 28)),  # century, not a leap year
        (dt.date(2000, 3, 31), 1, dt.date(2000, 2, 29)),  # 400-year leap year
        (dt.date(2024, 5, 31), 3, dt.date(2024, 2, 29)),
        (dt.date(2024, 12, 31), 1, dt.date(2024, 11, 30)),
        (dt.date(2024, 8, 31), 6, dt.date(2024, 2, 29)),
        (dt.date(2025, 3, 30), 13, dt.date(2024, 2, 29)),
    ],
)
def test_cutoff_day_is_clamped_to_the_end_of_a_shorter_month(last, months, cutoff):
    """A day of month the target month lacks becomes that month's last day (no
    ValueError, no spill into the next month)."""
    assert cutoff_of(last, months) == cutoff


def test_backtest_starts_strictly_after_a_cutoff_that_is_a_trading_day():
    """The cutoff date itself belongs to the training side: the backtest starts on the
    first trading date after it."""
    calendar = weekdays(dt.date(2023, 1, 2), dt.date(2024, 2, 15))
    assert dt.date(2023, 8, 15) in calendar  # a Tuesday
    assert backtest_start_date(calendar, 6) == dt.date(2023, 8, 16)


def test_a_cutoff_on_a_non_trading_day_starts_the_backtest_on_the_next_trading_day():
    """2024-05-18 minus 6 months is Saturday 2023-11-18: the backtest starts Monday."""
    calendar = weekdays(dt.date(2023, 1, 2), dt.date(2024, 5, 17)) + [dt.date(2024, 5, 18)]
    assert dt.date(2023, 11, 18).weekday() == 5
    assert backtest_start_date(calendar, 6) == dt.date(2023, 11, 20)


def test_a_gap_in_the_calendar_after_the_cutoff_is_skipped():
    """Only dates in the calendar count: a missing stretch right after the cutoff (market
    holidays, a data outage) moves the start to the next date that is there."""
    calendar = weekdays(dt.date(2023, 6, 1), dt.date(2024, 6, 28))  # cutoff 2023-12-28
    assert backtest_start_date(calendar, 6) == dt.date(2023, 12, 29)
    calendar = [d for d in calendar if not dt.date(2023, 12, 28) < d < dt.date(2024, 1, 8)]
    assert backtest_start_date(calendar, 6) == dt.date(2024, 1, 8)


# ----------------------------------------------------------------- chronological_split


def _series(dates: list[dt.date]) -> pl.Series:
    return pl.Series("date", dates, dtype=pl.Date)


@pytest.mark.parametrize("purge_gap", [1, 2, 5, 21])
def test_exactly_purge_gap_trading_days_lie_between_train_end_and_backtest_start(purge_gap):
    """The gap is counted in trading days of the data, not calendar days: exactly
    ``purge_gap`` dates are neither training nor backtest."""
    calendar = weekdays(dt.date(2022, 1, 3), dt.date(2024, 6, 28))
    window = chronological_split(_series(calendar), backtest_months=6, purge_gap=purge_gap)
    between = [d for d in calendar if window.train_end < d < window.backtest_start]
    assert len(between) == purge_gap
    assert window.purge_gap == purge_gap
    assert window.backtest_start == backtest_start_date(calendar, 6)
    # the training side ends on a trading date, right before the purged days
    assert window.train_end == calendar[calendar.index(window.backtest_start) - purge_gap - 1]


def test_split_bounds_are_the_first_and_last_dates_of_the_data():
    calendar = weekdays(dt.date(2022, 1, 3), dt.date(2024, 6, 28))
    window = chronological_split(_series(calendar), backtest_months=6, purge_gap=1)
    assert window.train_start == dt.date(2022, 1, 3)
    assert window.backtest_end == dt.date(2024, 6, 28)
    # cutoff 2023-12-28 (a Thursday): the backtest starts Friday, Thursday is purged
    assert window.backtest_start == dt.date(2023, 12, 29)
    assert window.train_end == dt.date(2023, 12, 27)
    assert window.train_start < window.train_end < window.backtest_start <= window.backtest_end


def test_repeated_and_unsorted_dates_split_like_the_sorted_calendar():
    """Rows of many tickers repeat each date, in any order: the split is made on the
    distinct dates, sorted."""
    calendar = weekdays(dt.date(2022, 1, 3), dt.date(2024, 6, 28))
    rows = calendar * 3 + calendar[::7]
    random.Random(7).shuffle(rows)
    messy = chronological_split(_series(rows), backtest_months=6, purge_gap=3)
    clean = chronological_split(_series(calendar), backtest_months=6, purge_gap=3)
    assert messy == clean


@pytest.mark.parametrize("purge_gap", [0, -1])
def test_a_purge_gap_below_one_is_a_config_error(purge_gap):
    calendar = weekdays(dt.date(2022, 1, 3), dt.date(2024, 6, 28))
    with pytest.raises(ConfigError, match="at least one trading day") as info:
        chronological_split(_series(calendar), backtest_months=6, purge_gap=purge_gap)
    assert info.value.exit_code == 3


@pytest.mark.parametrize(
    ("dates", "purge_gap"),
    [
        ([], 1),
        ([dt.date(2024, 1, 2)], 1),
        ([dt.date(2024, 1, 2), dt.date(2024, 1, 3)], 1),  # purge_gap + 1 dates
        (weekdays(dt.date(2024, 1, 1), dt.date(2024, 1, 12)), 9),  # 10 dates < 9 + 2
    ],
)
def test_too_few_dates_is_a_training_error_with_the_longer_period_hint(dates, purge_gap):
    with pytest.raises(TrainingError) as info:
        chronological_split(_series(dates), backtest_months=6, purge_gap=purge_gap)
    assert info.value.message == "Training failed - insufficient data"
    assert info.value.hint == "Use a longer data period: --period 5y"
    assert info.value.exit_code == 1


def test_a_backtest_covering_the_whole_history_leaves_no_training_rows():
    """One year of data with a 12-month backtest: enough dates, but none before the
    backtest and its purge gap, which the hint says (naming the backtest length)."""
    calendar = weekdays(dt.date(2023, 7, 3), dt.date(2024, 6, 28))
    with pytest.raises(TrainingError) as info:
        chronological_split(_series(calendar), backtest_months=12, purge_gap=1)
    assert info.value.message == "Training failed - insufficient data"
    assert info.value.hint is not None
    assert "No training rows remain before the 12-month backtest" in info.value.hint
    assert "--period 5y" in info.value.hint
    assert "--period 5y" in str(info.value)  # str() carries the hint for the CLI


def test_training_rows_must_precede_the_purge_gap_not_only_the_backtest():
    """The smallest data that still splits has one training date, then the purge gap;
    with one date fewer before the backtest it is a TrainingError."""
    before = [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
    backtest = [dt.date(2024, 3, 1), dt.date(2024, 3, 4)]  # cutoff 2024-02-04
    window = chronological_split(_series(before + backtest), backtest_months=1, purge_gap=1)
    assert (window.train_start, window.train_end) == (before[0], before[0])
    assert window.backtest_start == backtest[0]
    with pytest.raises(TrainingError, match="insufficient data") as info:
        chronological_split(_series(before[1:] + backtest), backtest_months=1, purge_gap=1)
    assert "1-month backtest" in (info.value.hint or "")


# ----------------------------------------------------------------- SplitWindow


def test_to_dict_has_iso_dates_and_the_purge_gap_in_days():
    window = SplitWindow(
        train_start=dt.date(2020, 1, 2),
        train_end=dt.date(2023, 12, 27),
        backtest_start=dt.date(2024, 1, 2),
        backtest_end=dt.date(2024, 6, 28),
        purge_gap=2,
    )
    assert window.to_dict() == {
        "train_start": "2020-01-02",
        "train_end": "2023-12-27",
        "backtest_start": "2024-01-02",
        "backtest_end": "2024-06-28",
        "purge_gap_days": 2,
    }


def test_split_window_is_immutable():
    window = chronological_split(
        _series(weekdays(dt.date(2022, 1, 3), dt.date(2024, 6, 28))),
        backtest_months=6,
        purge_gap=1,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        window.train_end = window.backtest_end  # type: ignore[misc]
