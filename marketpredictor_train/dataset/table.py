"""The modelling table: features beside labels, one row per (ticker, date), and its
chronological train | purge gap | backtest cut (before the guards of :mod:`.guards`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from marketpredictor_train.dataset.split import SplitWindow, chronological_split
from marketpredictor_train.errors import TrainingError

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from marketpredictor_train.features import FeatureSpec

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
        labels of ``part``."""
        import numpy as np
        import polars as pl

        columns = self.feature_columns
        if dtype == "float32":
            frame = part.select(pl.col(columns).cast(pl.Float32))
        else:
            frame = part.select(pl.col(columns).cast(pl.Float64))
        return (
            np.ascontiguousarray(frame.to_numpy()),
            part.get_column("label").to_numpy(),
        )

    def without_train_features(self) -> Dataset:
        """The same dataset whose training part keeps its keys and labels but not the
        feature columns: what a run holds once the training matrix is built."""
        import dataclasses

        kept = [c for c in self.train.columns if c not in set(self.feature_columns)]
        return dataclasses.replace(self, train=self.train.select(kept))


def labelled_features(
    ohlcv: pl.DataFrame, spec: FeatureSpec, *, horizon: int, dead_band: float = 0.0
) -> pl.DataFrame:
    """Model features joined with labels; rows without a label or with any null model
    feature (warm-up) are dropped. Sorted by (ticker, date)."""
    import polars as pl

    from marketpredictor_train.features import build_features, make_labels, model_feature_names

    columns = model_feature_names(spec)
    # Only the model's columns are built, and the feature frame is let go as soon as the
    # join has it: building the table is a training run's memory peak.
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
) -> Dataset:
    """Cut the labelled features into train and backtest; TrainingError when too small.

    The dead band applies to training labels only: moves inside the band are left out of
    what the model learns from, but the backtest scores every day, since which days will
    turn out small is not known when the prediction is made. With ``membership`` (ticker,
    start, end) only rows inside a ticker's membership are kept, in both parts.
    Runs use :func:`marketpredictor_train.dataset.build_dataset`, which also guards the cut."""
    import polars as pl

    from marketpredictor_train.features import model_feature_names

    table = labelled_features(ohlcv, spec, horizon=horizon)
    if membership is not None:
        table = within_membership(table, membership)
    if table.height == 0:
        raise TrainingError(
            "Training failed - insufficient data",
            hint="No row has both complete features and a label; use a longer data period: "
            "--period 5y",
        )
    # The calendar comes from the prices, not the labelled rows, so the backtest is the
    # last months of the market even when the last `horizon` days have no label yet.
    window = chronological_split(
        ohlcv.get_column("date"), backtest_months=backtest_months, purge_gap=purge_gap
    )
    train = table.filter(pl.col("date") <= window.train_end)
    if dead_band > 0:
        train = train.filter(pl.col("forward_return").abs() > dead_band)
    backtest = table.filter(pl.col("date") >= window.backtest_start)
    _check_enough(train, backtest)
    return Dataset(spec, model_feature_names(spec), train, backtest, window)


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
