"""The source kinds (what a ``--source`` string names) and what every source shares:
the seed's error messages and the calendar arithmetic of the period window."""

from __future__ import annotations

import datetime as dt

SOURCE_YAHOO = "yahoo"
SOURCE_SAMPLE = "sample"
SOURCE_FILES = "files"

EMPTY_DATASET = "Dataset is empty after build_dataset"
INSUFFICIENT_DATA = "Training failed - insufficient data"


def source_kind(source: str) -> str:
    """'yahoo', 'sample' or 'files' (anything else is a path)."""
    key = source.strip().lower()
    if key in (SOURCE_YAHOO, SOURCE_SAMPLE):
        return key
    return SOURCE_FILES


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day ``years`` years earlier (28 February for a 29 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)
