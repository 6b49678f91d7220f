"""Index membership: which dates each ticker belonged to the universe (``ticker, start,
end``), so that a backtest over past years uses the stocks of those years, not only the
survivors in today's list."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from marketpredictor_train.data.files import read_file
from marketpredictor_train.data.schema import normalize_column_name
from marketpredictor_train.errors import ConfigError, DataError

if TYPE_CHECKING:
    import polars as pl

COLUMNS = ("ticker", "start", "end")


def read_membership(path: Path) -> pl.DataFrame:
    """The membership file (CSV or Parquet): one row per span a ticker was a member, with
    ``end`` empty while it still is. ConfigError (exit 3) when the file is missing,
    DataError (exit 1) naming the rows at fault when its content is wrong."""
    import polars as pl

    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"Universe membership file not found: {path}",
            hint="--universe takes a CSV or Parquet file with columns ticker, start, end.",
        )
    frame = read_file(path)
    frame = frame.rename({c: normalize_column_name(c) for c in frame.columns})
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"Universe membership file {path} lacks the column(s) {', '.join(missing)}",
            hint="Give one row per membership span: ticker, start, end (end empty while "
            "the ticker is still a member).",
        )
    try:
        spans = frame.select(
            pl.col("ticker").cast(pl.Utf8).str.strip_chars().str.to_uppercase(),
            *(_as_date(pl.col(c)).alias(c) for c in ("start", "end")),
        )
    except pl.exceptions.PolarsError as exc:
        raise DataError(
            f"Universe membership file {path}: start and end must be dates (YYYY-MM-DD): "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    bad = spans.with_row_index("row").filter(
        pl.col("ticker").is_null()
        | (pl.col("ticker") == "")
        | pl.col("start").is_null()
        | (pl.col("end").is_not_null() & (pl.col("end") < pl.col("start")))
    )
    if bad.height:
        rows = ", ".join(str(r + 2) for r in bad.get_column("row").head(5).to_list())
        raise DataError(
            f"Universe membership file {path}: {bad.height} row(s) without a ticker or "
            f"start, or ending before they start (line(s) {rows})"
        )
    return spans


def _as_date(column: pl.Expr) -> pl.Expr:
    import polars as pl

    text = column.cast(pl.Utf8).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text).str.to_date(strict=True)
