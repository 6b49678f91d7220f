"""Moving-block bootstrap over trading days, for intervals that respect how backtest rows
depend on each other.

Rows of one day share the market's move (tickers are correlated), and with a horizon > 1
consecutive labels overlap. Resampling single rows would pretend every row is independent
and give intervals that are too narrow; resampling whole days, in blocks of consecutive
days at least one horizon long, keeps both kinds of dependence inside each draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

DEFAULT_RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True, slots=True)
class DayBlocks:
    """Which trading day each row belongs to, and the resampled day sequences."""

    day_of_row: np.ndarray  # int index into the sorted distinct days, one per row
    n_days: int
    block_days: int
    draws: np.ndarray  # (resamples, n_days) day indices

    @property
    def resamples(self) -> int:
        return int(self.draws.shape[0])

    @property
    def method(self) -> str:
        return (
            f"moving-block bootstrap over trading days ({self.block_days}-day blocks, "
            f"{self.resamples} resamples)"
        )

    def per_day(self, values: np.ndarray) -> np.ndarray:
        """Sum row values (n_rows, k) into day totals (n_days, k)."""
        import numpy as np

        values = np.asarray(values, dtype=float)
        if values.ndim == 1:
            values = values[:, None]
        out = np.zeros((self.n_days, values.shape[1]))
        np.add.at(out, self.day_of_row, values)
        return out

    def resampled_totals(self, values: np.ndarray) -> np.ndarray:
        """Totals (resamples, k) of the row values over each resampled sequence of days."""
        days = self.per_day(values)
        return days[self.draws].sum(axis=1)


def day_blocks(
    dates: np.ndarray, *, horizon: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> DayBlocks:
    """Blocks of ``max(horizon, ceil(n_days ** (1/3)))`` consecutive days (the usual n^(1/3)
    rule, never shorter than one label's overlap), drawn with a fixed seed."""
    import numpy as np

    distinct, day_of_row = np.unique(np.asarray(dates), return_inverse=True)
    n_days = int(distinct.size)
    block = max(1, horizon, math.ceil(n_days ** (1 / 3)))
    block = min(block, max(n_days, 1))
    rng = np.random.default_rng(seed)
    n_blocks = math.ceil(n_days / block) if n_days else 0
    starts = rng.integers(0, max(n_days - block + 1, 1), size=(resamples, n_blocks))
    draws = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(resamples, -1)
    return DayBlocks(day_of_row.astype(int), n_days, block, draws[:, :n_days])


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    import numpy as np

    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.asarray(samples, dtype=float), [tail, 100 - tail])
    return float(low), float(high)
