"""Chronological train | purge gap | backtest split over the market's trading calendar.

A training row at date t carries a label that looks ``horizon`` trading days ahead, so it
must end before the backtest starts: the last ``purge_gap`` (>= horizon) trading days
before the backtest are dropped from training. Nothing is shuffled.
"""

from __future__ import annotations

import calendar as calendar_module
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from marketpredictor_train.errors import ConfigError, TrainingError

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True, slots=True)
class SplitWindow:
    """The dates of one chronological split (inclusive bounds)."""

    train_start: date
    train_end: date
    backtest_start: date
    backtest_end: date
    purge_gap: int

    def to_dict(self) -> dict[str, str | int]:
        return {
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "backtest_start": self.backtest_start.isoformat(),
            "backtest_end": self.backtest_end.isoformat(),
            "purge_gap_days": self.purge_gap,
        }


def backtest_start_date(calendar: list[date], months: int) -> date:
    """First trading date after (last date - ``months`` calendar months)."""
    last = calendar[-1]
    year, month = last.year, last.month - months
    while month <= 0:
        month += 12
        year -= 1
    day = min(last.day, _days_in_month(year, month))
    cutoff = date(year, month, day)
    for d in calendar:
        if d > cutoff:
            return d
    return last


def _days_in_month(year: int, month: int) -> int:
    return calendar_module.monthrange(year, month)[1]


def chronological_split(dates: pl.Series, *, backtest_months: int, purge_gap: int) -> SplitWindow:
    """Where to cut a dataset whose rows have these dates (any order, repeats allowed)."""
    if purge_gap < 1:
        raise ConfigError("The purge gap must be at least one trading day (the label horizon)")
    calendar = dates.drop_nulls().unique().sort().to_list()
    if len(calendar) < purge_gap + 2:
        raise TrainingError(
            "Training failed - insufficient data",
            hint="Use a longer data period: --period 5y",
        )
    bt_start = backtest_start_date(calendar, backtest_months)
    bt_idx = calendar.index(bt_start)
    train_end_idx = bt_idx - 1 - purge_gap
    if train_end_idx < 0:
        raise TrainingError(
            "Training failed - insufficient data",
            hint=f"No training rows remain before the {backtest_months}-month backtest; "
            "use a longer data period: --period 5y",
        )
    return SplitWindow(
        train_start=calendar[0],
        train_end=calendar[train_end_idx],
        backtest_start=bt_start,
        backtest_end=calendar[-1],
        purge_gap=purge_gap,
    )
