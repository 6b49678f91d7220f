"""Purged walk-forward folds over the training part: the only data tuning ever scores on.

The trading calendar of the training rows is cut into ``n_folds + 1`` consecutive blocks.
Fold ``k`` validates on block ``k + 1`` and trains on every earlier date except the last
``purge_gap`` trading days before the validation block, whose labels look into it. The
validation blocks never reach past the training part, so the backtest stays unseen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from marketpredictor_train.errors import ConfigError, TrainingError

if TYPE_CHECKING:
    import numpy as np

# A fold with fewer rows than this says nothing about a parameter set.
MIN_FOLD_TRAIN_ROWS = 100
MIN_FOLD_VALID_ROWS = 20


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: row indices into the training part, and its dates."""

    index: int
    train_rows: np.ndarray
    valid_rows: np.ndarray
    train_end: date
    valid_start: date
    valid_end: date

    def to_dict(self) -> dict[str, str | int]:
        return {
            "fold": self.index,
            "train_rows": int(len(self.train_rows)),
            "valid_rows": int(len(self.valid_rows)),
            "train_end": self.train_end.isoformat(),
            "valid_start": self.valid_start.isoformat(),
            "valid_end": self.valid_end.isoformat(),
        }


def walk_forward_folds(
    dates: np.ndarray, labels: np.ndarray, *, n_folds: int, purge_gap: int
) -> list[Fold]:
    """Folds over rows whose dates are ``dates`` (any order); see the module docstring.

    Raises TrainingError (exit 1) when the rows are too few for ``n_folds`` folds."""
    import numpy as np

    if n_folds < 2:
        raise ConfigError("Walk-forward cross-validation needs at least 2 folds (--cv-folds)")
    if purge_gap < 1:
        raise ConfigError("The purge gap must be at least one trading day (the label horizon)")
    days = np.asarray(dates).astype("datetime64[D]")
    calendar = np.unique(days)
    blocks = np.array_split(np.arange(len(calendar)), n_folds + 1)
    if any(len(b) == 0 for b in blocks) or len(blocks[0]) <= purge_gap:
        raise _too_small(n_folds, len(calendar), purge_gap)
    day_index = np.searchsorted(calendar, days)
    folds = []
    for k in range(n_folds):
        valid_block = blocks[k + 1]
        first, last = int(valid_block[0]), int(valid_block[-1])
        last_train = first - 1 - purge_gap
        train_rows = np.flatnonzero(day_index <= last_train)
        valid_rows = np.flatnonzero((day_index >= first) & (day_index <= last))
        if (
            len(train_rows) < MIN_FOLD_TRAIN_ROWS
            or len(valid_rows) < MIN_FOLD_VALID_ROWS
            or len(np.unique(labels[train_rows])) < 2
        ):
            raise _too_small(n_folds, len(calendar), purge_gap)
        folds.append(
            Fold(
                index=k,
                train_rows=train_rows,
                valid_rows=valid_rows,
                train_end=_to_date(calendar[last_train]),
                valid_start=_to_date(calendar[first]),
                valid_end=_to_date(calendar[last]),
            )
        )
    return folds


def _to_date(value: np.datetime64) -> date:
    return value.astype("datetime64[D]").item()


def _too_small(n_folds: int, n_days: int, purge_gap: int) -> TrainingError:
    return TrainingError(
        f"Training failed - insufficient data for {n_folds} walk-forward folds "
        f"({n_days} trading days in the training part, purge gap {purge_gap})",
        hint="Use fewer folds (--cv-folds 3), a longer data period (--period 5y) or more tickers.",
    )
