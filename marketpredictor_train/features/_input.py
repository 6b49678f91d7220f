"""Checks and normalises the OHLCV frame the feature pipeline and the labels read.

Errors name the tickers and rows at fault, because the frame usually comes from a user's
files or a download and the fix is in the data, not in the code.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from marketpredictor_train.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
_SHOW = 5  # tickers or rows named in an error message


def _listing(items: Sequence[str], total: int) -> str:
    more = f" and {total - len(items)} more" if total > len(items) else ""
    return ", ".join(items) + more


def prepare(ohlcv: pl.DataFrame | pl.LazyFrame, columns: Sequence[str]) -> pl.DataFrame:
    """Return ``ticker, date, *columns`` (values as Float64) sorted by (ticker, date).

    Raises :class:`DataError` for a missing or mistyped column, a null, NaN or infinite
    value, a price <= 0 or a negative volume, or a (ticker, date) that appears twice.
    """
    if isinstance(ohlcv, pl.DataFrame):
        lf = ohlcv.lazy()
    elif isinstance(ohlcv, pl.LazyFrame):
        lf = ohlcv
    else:
        raise TypeError(f"expected a polars DataFrame or LazyFrame, got {type(ohlcv).__name__}")

    schema = lf.collect_schema()
    needed = ["ticker", "date", *columns]
    missing = [c for c in needed if c not in schema]
    if missing:
        raise DataError(
            f"OHLCV data is missing column(s): {', '.join(missing)}.",
            hint=f"Expected lower-case columns {', '.join(needed)}; found "
            f"{', '.join(schema.names()) or 'none'}.",
        )
    if schema["date"] != pl.Date:
        raise DataError(
            f"OHLCV column 'date' must be a date (pl.Date), found {schema['date']}.",
            hint="Convert it first, e.g. pl.col('date').str.to_date() or .dt.date().",
        )
    ticker_type = schema["ticker"]
    if ticker_type != pl.String and not isinstance(ticker_type, pl.Categorical | pl.Enum):
        raise DataError(f"OHLCV column 'ticker' must be text, found {ticker_type}.")
    not_numeric = [c for c in columns if not schema[c].is_numeric()]
    if not_numeric:
        raise DataError(
            f"OHLCV column(s) {', '.join(not_numeric)} must be numeric, found "
            f"{', '.join(str(schema[c]) for c in not_numeric)}.",
        )

    frame = lf.select(
        pl.col("ticker").cast(pl.String),
        pl.col("date"),
        *(pl.col(c).cast(pl.Float64) for c in columns),
    ).collect()
    _check_missing_values(frame, columns)
    _check_signs(frame, columns)
    if not ordered_by_ticker_date(frame):
        frame = frame.sort("ticker", "date")
        _check_duplicates(frame)
    return frame


def prepare_prices(ohlcv: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """:func:`prepare` of every price column: what the features and the labels read."""
    return prepare(ohlcv, PRICE_COLUMNS)


def ordered_by_ticker_date(frame: pl.DataFrame) -> bool:
    """Whether rows are already sorted by (ticker, date) with no repeated pair, the usual
    case for data from the data layer: then neither a sort nor a duplicate scan is needed."""
    ticker, date = pl.col("ticker"), pl.col("date")
    prev_ticker = ticker.shift(1)
    ahead = (ticker > prev_ticker) | ((ticker == prev_ticker) & (date > date.shift(1)))
    return bool(frame.select(ahead.slice(1).all()).item())


def _check_missing_values(frame: pl.DataFrame, columns: Sequence[str]) -> None:
    bad_row = pl.any_horizontal(
        pl.col("ticker").is_null(),
        pl.col("date").is_null(),
        *(pl.col(c).is_null() | ~pl.col(c).is_finite() for c in columns),
    )
    if not frame.select(bad_row.any()).item():
        return
    bad = frame.filter(bad_row)
    per_ticker = bad.group_by("ticker", maintain_order=True).agg(
        pl.len().alias("rows"), pl.col("date").first().alias("first")
    )
    shown = [f"{t} ({n} rows from {d})" for t, n, d in per_ticker.head(_SHOW).iter_rows()]
    raise DataError(
        f"OHLCV data has {bad.height} row(s) with a missing, NaN or infinite value in "
        f"{', '.join(['ticker', 'date', *columns])}: {_listing(shown, per_ticker.height)}.",
        hint="Drop or repair those rows in the data source; indicators are not computed "
        "over gaps and missing values are never guessed.",
    )


def _check_signs(frame: pl.DataFrame, columns: Sequence[str]) -> None:
    """Prices must be positive and volumes not negative: anything else is a broken row, and
    the features divide by prices."""
    bad_row = pl.any_horizontal(
        *((pl.col(c) < 0.0) if c == "volume" else (pl.col(c) <= 0.0) for c in columns)
    )
    if not frame.select(bad_row.any()).item():
        return
    bad = frame.filter(bad_row)
    shown = [f"{t} {d}" for t, d in bad.select("ticker", "date").head(_SHOW).iter_rows()]
    raise DataError(
        f"OHLCV data has {bad.height} row(s) with a price <= 0 or a negative volume: "
        f"{_listing(shown, bad.height)}.",
        hint="Drop or repair those rows in the data source.",
    )


def _check_duplicates(frame: pl.DataFrame) -> None:
    repeated = (pl.col("ticker") == pl.col("ticker").shift(1)) & (
        pl.col("date") == pl.col("date").shift(1)
    )
    if not frame.select(repeated.any()).item():
        return
    dup = frame.filter(repeated).select("ticker", "date").unique(maintain_order=True)
    shown = [f"{t} {d}" for t, d in dup.head(_SHOW).iter_rows()]
    raise DataError(
        f"OHLCV data has {dup.height} (ticker, date) pair(s) more than once: "
        f"{_listing(shown, dup.height)}.",
        hint="Keep one row per ticker and trading day.",
    )
