"""The modelling table every run goes through: labelled features, the chronological
train | purge gap | backtest split, and the guards that keep the future out of training.

:func:`build_dataset` is the one way `train` and `optimize` get their rows, so both see the
same rows; :func:`scoring_rows` is the one way a stored model's backtest rows are chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from marketpredictor_train.dataset import guards
from marketpredictor_train.dataset.split import (
    SplitWindow,
    backtest_start_date,
    chronological_split,
)
from marketpredictor_train.dataset.table import (
    MIN_BACKTEST_ROWS,
    MIN_TRAIN_ROWS,
    Dataset,
    cut_dataset,
    labelled_features,
    within_membership,
)

if TYPE_CHECKING:
    import polars as pl

    from marketpredictor_train.features import FeatureSpec

__all__ = [
    "MIN_BACKTEST_ROWS",
    "MIN_TRAIN_ROWS",
    "Dataset",
    "ScoringRows",
    "SplitWindow",
    "backtest_start_date",
    "build_dataset",
    "chronological_split",
    "cut_dataset",
    "labelled_features",
    "scoring_rows",
    "within_membership",
]


def build_dataset(  # noqa: PLR0913 - the prices, the spec, the cut and how to guard and store it
    ohlcv: pl.DataFrame,
    spec: FeatureSpec,
    *,
    horizon: int,
    dead_band: float,
    backtest_months: int,
    purge_gap: int,
    membership: pl.DataFrame | None = None,
    check_lookahead: bool = True,
    train_dtype: str = "float64",
) -> Dataset:
    """The guarded modelling table of a training run: cut chronologically (the dead band
    on training labels only; rows outside ``membership`` left out), training rows whose
    label reaches into the backtest purged, and the feature spec checked for look-ahead
    (TrainingError, exit 1, when it peeks; skipped with ``check_lookahead=False`` by a
    caller that checked the same spec on the same data already). The training features
    are ``train_dtype``: the model type's ``feature_dtype``."""
    dataset = cut_dataset(
        ohlcv,
        spec,
        horizon=horizon,
        dead_band=dead_band,
        backtest_months=backtest_months,
        purge_gap=purge_gap,
        membership=membership,
        train_dtype=train_dtype,
    )
    return guards.guard_dataset(dataset, ohlcv, lookahead=check_lookahead)


@dataclass(frozen=True)
class ScoringRows:
    """The backtest rows a stored model is scored on, and how they were chosen."""

    rows: pl.DataFrame
    window: SplitWindow
    first_date: date  # the first date scored: the backtest start or later
    warnings: tuple[str, ...]


def scoring_rows(
    ohlcv: pl.DataFrame,
    spec: FeatureSpec,
    *,
    horizon: int,
    backtest_months: int,
    purge_gap: int,
    train_end: date | None,
    membership: pl.DataFrame | None = None,
) -> ScoringRows:
    """The labelled rows of the last ``backtest_months`` that a model which learned from
    rows up to ``train_end`` has never seen (plus the purge gap), every day (a dead band
    only ever applies to training labels), with its feature spec checked for look-ahead
    first."""
    window = chronological_split(
        ohlcv.get_column("date"), backtest_months=backtest_months, purge_gap=purge_gap
    )
    guards.check_no_lookahead(ohlcv, spec, window.train_end)
    table = labelled_features(ohlcv, spec, horizon=horizon)
    if membership is not None:
        table = within_membership(table, membership)
    rows, first, warnings = guards.unseen_rows(
        table, ohlcv, window.backtest_start, train_end, purge_gap
    )
    return ScoringRows(rows=rows, window=window, first_date=first, warnings=tuple(warnings))
