"""The file source: users' own OHLCV data as a CSV or Parquet file, or a folder of them.

Columns are matched ignoring case (``Date``, ``Adj Close`` ...); dates may be ISO dates or
timestamps; ``adj_close`` is optional. Every file is checked on its own (so a message
names the file at fault) and then all together (a ticker and date in two files is a
duplicate).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from marketpredictor_train.data.schema import describe_list, normalize_column_name, validate_ohlcv
from marketpredictor_train.errors import ConfigError, DataError

if TYPE_CHECKING:
    import polars as pl

log = structlog.get_logger(__name__)

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"


def resolve_path(source: str) -> Path:
    """The file or folder named by --source; a path that does not exist is a ConfigError."""
    path = Path(source).expanduser()
    if not path.exists():
        raise ConfigError(
            f"Data source not found: {source}",
            hint="--source takes 'yahoo', 'sample', or the path of a CSV/Parquet file or "
            "a folder of them.",
        )
    return path


def list_data_files(path: Path) -> list[Path]:
    """The CSV/Parquet files a source path stands for (a folder: its files, not recursive)."""
    if path.is_file():
        return [path]
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and not p.name.startswith(".") and _kind_by_name(p) is not None
    )
    if not files:
        raise DataError(
            f"No CSV or Parquet files in folder {path}.",
            hint="Put files named *.csv, *.csv.gz, *.parquet or *.pq in the folder.",
        )
    skipped = [p.name for p in path.iterdir() if p.is_file() and p not in files]
    if skipped:
        log.info("ignoring files that are not CSV/Parquet", folder=str(path), files=skipped)
    return files


def load_files(source: str) -> pl.DataFrame:
    """Every row of the file or folder, validated and sorted by (ticker, date)."""
    import polars as pl

    path = resolve_path(source)
    frames = [
        validate_ohlcv(_normalize_tickers(read_file(p)), origin=str(p))
        for p in list_data_files(path)
    ]
    if len(frames) == 1:
        return frames[0]
    return validate_ohlcv(pl.concat(frames, how="vertical"), origin=str(path))


def read_file(path: Path) -> pl.DataFrame:  # noqa: C901 - one branch per way a file can be unreadable
    """One file as read, before any check: CSV as text columns, Parquet as stored."""
    import polars as pl

    kind = _kind_by_name(path)
    if kind is None:
        raise DataError(
            f"{path} is not a CSV or Parquet file (by its name).",
            hint="Give a .csv, .csv.gz, .parquet or .pq file, or export the data to CSV.",
        )
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    if not head:
        raise DataError(
            f"{path} is empty (0 bytes).",
            hint="Write a header line and at least one row per ticker and date.",
        )
    if head.startswith(_PARQUET_MAGIC):
        kind = "parquet"
    elif kind == "parquet":
        raise DataError(
            f"{path} is not a Parquet file (it does not start with the Parquet marker).",
            hint="Re-export the file as Parquet, or save it as CSV with a .csv name.",
        )
    elif head.startswith(_ZIP_MAGIC):
        raise DataError(
            f"{path} is a ZIP/Excel file, not CSV or Parquet.",
            hint="Export the sheet as CSV (comma separated) and point --source at that.",
        )
    elif not head.startswith(_GZIP_MAGIC) and b"\x00" in head:
        raise DataError(
            f"{path} is not a CSV or Parquet file (it holds binary data).",
            hint="Give a comma-separated text file with a header line, or a Parquet file.",
        )
    elif not head.startswith(_GZIP_MAGIC) and not _is_text(head):
        raise DataError(
            f"{path} is not UTF-8 text, so it cannot be read as CSV.",
            hint="Save the file as CSV with UTF-8 encoding.",
        )
    try:
        if kind == "parquet":
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema=False, raise_if_empty=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        what = "Parquet" if kind == "parquet" else "CSV"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{path} cannot be read as {what}: {first}",
            hint=f"Check that the file is a complete, valid {what} file.",
        ) from exc


def _normalize_tickers(frame: pl.DataFrame) -> pl.DataFrame:
    """' aapl' and 'AAPL' are one ticker, whatever types the file stores."""
    import polars as pl

    for name in frame.columns:
        if normalize_column_name(name) == "ticker" and frame.schema[name] == pl.String:
            return frame.with_columns(pl.col(name).str.strip_chars().str.to_uppercase())
    return frame


def _kind_by_name(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut off by the 4096-byte read is still text.
        return exc.start >= len(head) - 3
    return True


def available_tickers_message(tickers: list[str]) -> str:
    return describe_list(sorted(tickers), limit=20)
