"""Guards against the future leaking into training or scoring: labels that reach into the
backtest, features whose value on a date changes when later rows are removed, and rows a
stored model learned from.

Both run inside :func:`marketpredictor_train.dataset.build_dataset` (the purge as the table
is cut), which every `train` and `optimize` goes through before anything is fitted; a guard
that fails stops the run (exit 1) rather than letting a model that has seen the future reach
the gate.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date
from typing import TYPE_CHECKING, cast

from marketpredictor_train.errors import TrainingError

if TYPE_CHECKING:
    import polars as pl

    from marketpredictor_train.dataset.table import Dataset
    from marketpredictor_train.features import FeatureSpec

# Enough tickers to catch a leaking indicator, few enough to cost a fraction of a second.
LOOKAHEAD_TICKERS = 8
_RTOL = 1e-9


def purge_reaching(
    train: pl.DataFrame, prices: pl.DataFrame, horizon: int, backtest_start: date
) -> pl.DataFrame:
    """``train`` without the rows whose label ends on or after ``backtest_start``.

    ``prices`` are the price rows ``train`` was labelled from: whole tickers, sorted by
    (ticker, date). The split leaves ``purge_gap >= horizon`` market days between the two
    parts, which is enough when a ticker trades every market day; a ticker with missing
    days reaches further in ``horizon`` of its own rows, and those rows are removed here.
    The table is cut a group of tickers at a time and each group's training rows are
    purged as they are cut (the whole table's keys are never gathered for it)."""
    import numpy as np
    import polars as pl

    # The price rows before the backtest whose label (``horizon`` of the ticker's own rows
    # later) ends in the backtest or is unknown: exactly each ticker's last ``horizon``
    # rows before the backtest start. On rows sorted by (ticker, date) those are the rows
    # whose ticker differs ``horizon`` rows on, or whose row ``horizon`` rows on is in the
    # backtest.
    ticker, day, start = pl.col("ticker"), pl.col("date"), backtest_start
    reaching = prices.select("ticker", "date").filter(
        (day < start) & (ticker.shift(-horizon).ne_missing(ticker) | (day.shift(-horizon) >= start))
    )
    if reaching.height == 0 or train.height == 0:
        return train
    # Only training rows on or after the earliest such date can match, which are few:
    # those are joined, not the whole training part.
    first = reaching.get_column("date").min()
    rows = train.select(pl.arg_where(day >= first)).to_series()
    near = train.select("ticker", "date")[rows].with_columns(rows.alias("_row"))
    hits = near.join(reaching, on=["ticker", "date"], how="semi").get_column("_row")
    if hits.len() == 0:
        return train
    keep = np.ones(train.height, dtype=bool)
    keep[hits.to_numpy()] = False
    return train.filter(pl.Series(keep))


def check_split(dataset: Dataset) -> None:
    """Every training date before the backtest start, every backtest date on or after
    it (TrainingError, exit 1, otherwise: a bug, never a property of the data)."""
    window = dataset.window
    if dataset.train.height and dataset.backtest.height:
        train_last = cast(date, dataset.train.get_column("date").max())
        backtest_first = cast(date, dataset.backtest.get_column("date").min())
        if not train_last < window.backtest_start <= backtest_first:
            raise TrainingError(
                "Training failed - the chronological split is broken: training rows reach "
                f"{train_last}, the backtest starts {window.backtest_start}",
                hint="This is a bug in mptrain; please report it.",
            )


def check_no_lookahead(
    ohlcv: pl.DataFrame,
    spec: FeatureSpec,
    cutoff: date,
    *,
    max_tickers: int = LOOKAHEAD_TICKERS,
) -> None:
    """Build the features of a few tickers twice, from all rows and from the rows up to
    ``cutoff``, and require identical values on every date up to ``cutoff``. A feature
    that reads a later row (tomorrow's close, a centred window, a whole-series scaler)
    changes there and is named in the TrainingError."""
    import polars as pl

    from marketpredictor_train import features

    tickers = sorted(ohlcv.get_column("ticker").unique().to_list())[:max_tickers]
    subset = ohlcv.filter(pl.col("ticker").is_in(tickers))
    truncated = subset.filter(pl.col("date") <= cutoff)
    if truncated.height == 0:
        return
    columns = features.model_feature_names(spec)
    full = features.build_features(subset, spec).filter(pl.col("date") <= cutoff)
    past = features.build_features(truncated, spec)
    joined = full.select("ticker", "date", *columns).join(
        past.select("ticker", "date", *columns), on=["ticker", "date"], how="full", suffix="_past"
    )
    leaking = []
    for name in columns:
        a, b = pl.col(name), pl.col(f"{name}_past")
        differs = (a.is_null() != b.is_null()) | (
            a.is_not_null() & b.is_not_null() & ((a - b).abs() > _RTOL * (1 + a.abs()))
        )
        n = joined.select(differs.sum()).item()
        if n:
            leaking.append((name, int(n)))
    if leaking:
        named = ", ".join(f"{name} ({n} rows)" for name, n in leaking[:10])
        raise TrainingError(
            f"Training failed - look-ahead detected: feature values on or before {cutoff} "
            f"change when later rows are removed: {named}",
            hint="A feature may only use rows up to its own date; check custom features "
            "and indicators for shift(-n), centred windows or whole-series statistics.",
        )


def guard_dataset(dataset: Dataset, ohlcv: pl.DataFrame, *, lookahead: bool = True) -> Dataset:
    """The guards on a freshly cut dataset (whose training rows the cut has purged with
    :func:`purge_reaching`): the split checked, then (unless the caller already checked
    this spec on this data: ``lookahead=False``) the look-ahead check of the feature
    spec."""
    check_split(dataset)
    if lookahead:
        check_no_lookahead(ohlcv, dataset.spec, dataset.window.train_end)
    return dataset


def first_unseen_date(ohlcv: pl.DataFrame, train_end: date, purge_gap: int) -> date | None:
    """The first market date a model that learned from rows up to ``train_end`` may be
    scored on: ``purge_gap`` trading days later (its last labels reach that far). None
    when the data ends before it."""
    calendar = sorted(set(ohlcv.get_column("date").to_list()))
    first = bisect_right(calendar, train_end) + purge_gap
    return calendar[first] if first < len(calendar) else None


def unseen_rows(
    table: pl.DataFrame,
    ohlcv: pl.DataFrame,
    backtest_start: date,
    train_end: date | None,
    purge_gap: int,
) -> tuple[pl.DataFrame, date, list[str]]:
    """The purge guard of a model trained earlier: the labelled rows from the backtest
    start, and no earlier than ``purge_gap`` market days after ``train_end``, the last date
    the model learned from. Returns the rows, the first date scored and warnings."""
    import polars as pl

    warnings: list[str] = []
    start = backtest_start
    if train_end is None:
        warnings.append(
            "The model's manifest does not say which dates it learned from: these rows may "
            "include its training data, and its metrics may be optimistic"
        )
    else:
        unseen = first_unseen_date(ohlcv, train_end, purge_gap)
        if unseen is None:
            return table.clear(), cast(date, ohlcv.get_column("date").max()), warnings
        if unseen > start:
            warnings.append(
                f"Rows before {unseen} are left out: the model learned from data up to "
                f"{train_end} (plus a {purge_gap}-day purge gap)"
            )
            start = unseen
    rows = table.filter(pl.col("date") >= start).sort("ticker", "date")
    return rows, start, warnings
