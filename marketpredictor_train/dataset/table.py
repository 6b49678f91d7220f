"""The modelling table: features beside labels, one row per (ticker, date), and its
chronological train | purge gap | backtest cut (before the guards of :mod:`.guards`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from marketpredictor_train.dataset.guards import purge_reaching
from marketpredictor_train.dataset.split import SplitWindow, chronological_split
from marketpredictor_train.errors import MptrainError, TrainingError

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from marketpredictor_train.features import FeatureSpec

log = structlog.get_logger(__name__)

# Below this many training rows (or backtest rows) no metric means anything.
MIN_TRAIN_ROWS = 250
MIN_BACKTEST_ROWS = 40


@dataclass(frozen=True)
class Dataset:
    """Feature/label rows cut chronologically; ``train`` ends ``purge_gap`` trading days
    before ``backtest`` begins."""

    spec: FeatureSpec
    feature_columns: list[str]
    train: pl.DataFrame
    backtest: pl.DataFrame
    window: SplitWindow

    def xy(self, part: pl.DataFrame, dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
        """Features (n_rows x n_features, C order, ``dtype`` float64 or float32) and
        labels of ``part``. The matrix is filled a column at a time: it is the only
        full-size copy made."""
        rows = FrameBatches(part, self.feature_columns, dtype)
        return rows.matrix(), rows.labels

    def batches(
        self, part: pl.DataFrame, dtype: str = "float64", rows: np.ndarray | None = None
    ) -> FrameBatches:
        """The features and labels of ``part`` (only its ``rows``, ascending positions, when
        given) read a batch at a time: what :meth:`ModelType.prepare_fit` reads, without a
        matrix of every row."""
        return FrameBatches(part, self.feature_columns, dtype, rows)

    def without_train_features(self) -> Dataset:
        """The same dataset whose training part keeps only what a run reads of it once
        its features are in the fits: the dates (the calibration fold) and the labels
        (the base rate, the row count). 500 tickers x 10 years: 6 MB instead of 137."""
        import dataclasses

        import polars as pl

        # A frame of the kept columns themselves: `select` and `drop` of 1.17M rows
        # allocated about 140 MB for a moment (measured), just before the fit's peak.
        kept = [self.train.get_column(c) for c in TRAIN_COLUMNS_KEPT]
        return dataclasses.replace(self, train=pl.DataFrame(kept))


# The columns of the training part a run keeps once its features are in the fits.
TRAIN_COLUMNS_KEPT = ("date", "label")


# Rows per batch of FrameBatches: 32,768 rows of 25 float32 features are 3.3 MB. XGBoost's
# quantised matrix of 1.17M rows, built from batches of this size, peaked 83 MB above
# what the run held before, against 123 MB with 131,072 rows a batch and 164 MB with
# 262,144 (measured), and took no longer (2.6-2.9 s).
BATCH_ROWS = 1 << 15


class FrameBatches:
    """The rows of a feature table (or only ``rows`` of it: ascending positions) as
    (features, labels) batches of at most BATCH_ROWS rows, the features C order in
    ``dtype``; iterable as often as needed (the :class:`RowBatches` of a model type's
    ``prepare_fit``). Each batch is filled a column at a time from the table's own
    buffers: the batches together hold what :meth:`matrix` (and ``Dataset.xy``) makes of
    the same rows."""

    def __init__(
        self,
        frame: pl.DataFrame,
        columns: list[str],
        dtype: str = "float64",
        rows: np.ndarray | None = None,
    ) -> None:
        import numpy as np

        self._frame = frame
        self._columns = columns
        self._dtype = np.float32 if dtype == "float32" else np.float64
        if rows is not None and rows.size > 1 and not bool((np.diff(rows) > 0).all()):
            raise ValueError("FrameBatches rows must be ascending positions")
        self._rows = rows
        labels = frame.get_column("label").to_numpy()
        self._labels = labels if rows is None else labels[rows]

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    def __len__(self) -> int:
        return len(self._labels)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        import numpy as np

        for start in range(0, len(self._labels), BATCH_ROWS):
            end = min(start + BATCH_ROWS, len(self._labels))
            if self._rows is None:
                first, chosen = start, None
                piece = self._frame.slice(start, end - start)
            else:
                wanted = self._rows[start:end]
                first = int(wanted[0])
                piece = self._frame.slice(first, int(wanted[-1]) - first + 1)
                chosen = wanted - first
            matrix = np.empty((end - start, len(self._columns)), dtype=self._dtype)
            for j, name in enumerate(self._columns):
                values = piece.get_column(name).to_numpy()
                matrix[:, j] = values if chosen is None else values[chosen]
            yield matrix, self._labels[start:end]

    def matrix(self) -> np.ndarray:
        """All the rows' features as one matrix, filled a column at a time."""
        import numpy as np

        out = np.empty((len(self), len(self._columns)), dtype=self._dtype)
        for j, name in enumerate(self._columns):
            values = self._frame.get_column(name).to_numpy()
            out[:, j] = values if self._rows is None else values[self._rows]
        return out


# Rows of prices per piece of the table build (whole tickers, about 50 of ten years).
# Features and labels read only their own ticker's rows, so the table is built a group of
# tickers at a time and each group's intermediates are let go before the next: the
# build's memory is then its result plus one group's working set, not every row's (the
# whole-frame build of 500 tickers x 10 years held about 0.5 GB of intermediates). The
# freed intermediates stay in the allocator for a fraction of a second, so smaller
# pieces keep the build's peak lower (500 tickers x 10 years, measured: 640 MB with
# 250,000 rows a piece, 580 MB with 125,000, 575 MB with 100,000; 0.1 s slower each step).
TABLE_PIECE_ROWS = 125_000


def labelled_features(
    ohlcv: pl.DataFrame, spec: FeatureSpec, *, horizon: int, dead_band: float = 0.0
) -> pl.DataFrame:
    """Model features joined with labels; rows without a label or with any null model
    feature (warm-up) are dropped. Sorted by (ticker, date)."""
    import polars as pl

    pieces = _labelled_pieces(ohlcv, spec, horizon, dead_band)
    return pl.concat([labelled for _, labelled in pieces], rechunk=False)


def _labelled_pieces(
    ohlcv: pl.DataFrame, spec: FeatureSpec, horizon: int, dead_band: float = 0.0
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """The prices of whole groups of tickers (sorted by ticker and date) and their
    labelled features, in ticker order (see TABLE_PIECE_ROWS); at least one piece."""
    from marketpredictor_train.features import prepare_prices

    prices = prepare_prices(ohlcv)  # sorted by (ticker, date), checked once
    starts = _piece_starts(prices.get_column("ticker"), TABLE_PIECE_ROWS)
    for begin, end in itertools.pairwise([*starts, prices.height]):
        group = prices.slice(begin, end - begin)
        yield group, _labelled(group, spec, horizon, dead_band)


def _piece_starts(tickers: pl.Series, rows: int) -> list[int]:
    """Row offsets where a piece begins: a ticker's first row, about ``rows`` apart."""
    import numpy as np

    firsts = np.flatnonzero(tickers.is_first_distinct().to_numpy())
    starts, next_at = [0], rows
    for first in firsts[1:]:
        if first >= next_at:
            starts.append(int(first))
            next_at = int(first) + rows
    return starts


def _labelled(
    ohlcv: pl.DataFrame, spec: FeatureSpec, horizon: int, dead_band: float
) -> pl.DataFrame:
    import polars as pl

    from marketpredictor_train.features import build_features, make_labels, model_feature_names

    columns = model_feature_names(spec)
    features = build_features(ohlcv, spec, only=columns)  # sorted by (ticker, date)
    labels = make_labels(ohlcv, horizon=horizon, dead_band=dead_band)
    keys = ["ticker", "date"]
    if features.select(keys).equals(labels.select(keys)):
        # both have every row of the prices in (ticker, date) order: side by side, no join
        table = features.hstack(labels.drop(keys))
    else:
        table = features.join(labels, on=keys, how="inner", maintain_order="left")
    del features
    complete = pl.col("label").is_not_null() & pl.all_horizontal(
        [pl.col(c).is_not_null() & pl.col(c).is_finite() for c in columns]
    )
    return table.filter(complete)


def cut_dataset(
    ohlcv: pl.DataFrame,
    spec: FeatureSpec,
    *,
    horizon: int,
    dead_band: float,
    backtest_months: int,
    purge_gap: int,
    membership: pl.DataFrame | None = None,
    train_dtype: str = "float64",
) -> Dataset:
    """Cut the labelled features into train and backtest; TrainingError when too small.

    The dead band applies to training labels only: moves inside the band are left out of
    what the model learns from, but the backtest scores every day, since which days will
    turn out small is not known when the prediction is made. With ``membership`` (ticker,
    start, end) only rows inside a ticker's membership are kept, in both parts. The
    training part's features are ``train_dtype`` (float32 for a model that bins float32
    values anyway: half the memory); the backtest's stay float64, whichever model scores
    them. Training rows whose label ends in the backtest (a ticker with missing days
    reaches past the purge gap) are left out (:func:`.guards.purge_reaching`), and the
    training part keeps no ``forward_return`` (the backtest does). Runs use
    :func:`marketpredictor_train.dataset.build_dataset`, which also checks the split and
    the feature spec's look-ahead."""
    import polars as pl

    from marketpredictor_train.features import model_feature_names

    # The calendar comes from the prices, not the labelled rows, so the backtest is the
    # last months of the market even when the last `horizon` days have no label yet.
    window: SplitWindow | None = None
    try:
        window = chronological_split(
            ohlcv.get_column("date"), backtest_months=backtest_months, purge_gap=purge_gap
        )
    except MptrainError as exc:  # raised once the table is known not to be empty
        split_error = exc
    columns = model_feature_names(spec)
    train_parts, backtest_parts = [], []
    rows = purged = 0
    # Each piece is cut (and its training rows purged) as soon as it is built: the whole
    # table is never held beside its two parts.
    for prices, piece in _labelled_pieces(ohlcv, spec, horizon):
        if membership is not None:
            piece = within_membership(piece, membership)
        rows += piece.height
        if window is None:
            continue
        train = piece.filter(pl.col("date") <= window.train_end)
        if dead_band > 0:
            train = train.filter(pl.col("forward_return").abs() > dead_band)
        height = train.height
        train = purge_reaching(train, prices, horizon, window.backtest_start)
        purged += height - train.height
        # The training part keeps no returns: the dead band was their only reader there.
        train = train.drop("forward_return")
        if train_dtype == "float32":
            train = train.with_columns(pl.col(columns).cast(pl.Float32))
        train_parts.append(train)
        backtest_parts.append(piece.filter(pl.col("date") >= window.backtest_start))
        del prices, piece, train
    if purged:
        log.info(
            "Purged training rows whose label reaches into the backtest",
            rows=purged,
            horizon=horizon,
        )
    if rows == 0:
        raise TrainingError(
            "Training failed - insufficient data",
            hint="No row has both complete features and a label; use a longer data period: "
            "--period 5y",
        )
    if window is None:
        raise split_error
    train = pl.concat(train_parts, rechunk=False)
    backtest = pl.concat(backtest_parts, rechunk=True)
    _check_enough(train, backtest)
    return Dataset(spec, columns, train, backtest, window)


def within_membership(table: pl.DataFrame, membership: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``table`` whose date lies inside one of its ticker's membership spans
    (``ticker, start, end``, inclusive; a null end means still a member)."""
    import polars as pl

    spans = membership.select(
        pl.col("ticker"), pl.col("start").alias("_start"), pl.col("end").alias("_end")
    )
    inside = (
        table.select("ticker", "date")
        .join(spans, on="ticker", how="inner")
        .filter(
            (pl.col("date") >= pl.col("_start"))
            & (pl.col("_end").is_null() | (pl.col("date") <= pl.col("_end")))
        )
        .select("ticker", "date")
        .unique()
    )
    return table.join(inside, on=["ticker", "date"], how="semi").sort(["ticker", "date"])


def _check_enough(train: pl.DataFrame, backtest: pl.DataFrame) -> None:
    hint = (
        "Use a longer data period (--period 5y), more tickers, or check the class "
        "distribution in the data; or try a different model type (--model-type rf)."
    )
    if train.height < MIN_TRAIN_ROWS or backtest.height < MIN_BACKTEST_ROWS:
        raise TrainingError(
            "Training failed - insufficient data "
            f"({train.height} training rows, {backtest.height} backtest rows; need at least "
            f"{MIN_TRAIN_ROWS} and {MIN_BACKTEST_ROWS})",
            hint=hint,
        )
    classes = train.get_column("label").unique().to_list()
    if len(classes) < 2:
        raise TrainingError(
            f"Training failed - insufficient data (every training label is {classes[0]})",
            hint=hint,
        )
