"""The OHLCV frame every source produces, and the input checks every source goes through.

``validate_ohlcv`` turns a frame with the documented columns (any letter case, dates as
ISO strings, dates or timestamps, numbers as numbers or text) into the canonical frame,
or raises one :class:`DataError` listing every problem with the tickers and dates at fault.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from marketpredictor_train.errors import DataError

if TYPE_CHECKING:
    import polars as pl

log = structlog.get_logger(__name__)

OHLCV_COLUMNS: tuple[str, ...] = (
    "date",
    "ticker",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "adj_close",
)
REQUIRED_COLUMNS: tuple[str, ...] = OHLCV_COLUMNS[:-1]
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
NUMERIC_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume", "adj_close")

# Rows named in a message; the rest are counted. Enough to find the pattern, short
# enough to read in a terminal.
MAX_EXAMPLES = 5
# Relative slack for the high/low ordering: a price rescaled by an adjustment factor can
# land a rounding step outside [low, high] without the bar being wrong.
OHLC_TOLERANCE = 1e-9

# Above this a price is a unit or scale error (the dearest shares trade below 1e6); the
# features square prices and volumes, and 1e300 would overflow to infinity there.
MAX_PRICE = 1e12
# Bars dated after today (UTC) plus this many days cannot be real: an exchange ahead of UTC
# is at most a day ahead.
FUTURE_GRACE_DAYS = 1

_ALIASES = {"adjclose": "adj_close", "adjusted_close": "adj_close", "symbol": "ticker"}


def ohlcv_schema() -> dict[str, pl.DataType]:
    """Column name -> Polars dtype of the canonical frame."""
    import polars as pl

    return {
        "date": pl.Date(),
        "ticker": pl.String(),
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume": pl.Float64(),
        "adj_close": pl.Float64(),
    }


def normalize_column_name(name: str) -> str:
    """'Adj Close' -> 'adj_close', ' Date ' -> 'date': the case-insensitive column match."""
    key = re.sub(r"[\s\-.]+", "_", name.strip().lower())
    return _ALIASES.get(key, key)


@dataclass(frozen=True, slots=True)
class Problem:
    """One failed check: what is wrong, how many rows, a few of them, and the fix."""

    what: str
    count: int
    examples: tuple[str, ...]
    fix: str

    def describe(self) -> str:
        shown = ", ".join(self.examples)
        more = (
            f" and {self.count - len(self.examples)} more"
            if self.count > len(self.examples)
            else ""
        )
        rows = "row" if self.count == 1 else "rows"
        return f"{self.what}: {self.count} {rows} ({shown}{more}). {self.fix}"


def raise_problems(problems: Sequence[Problem], origin: str | None) -> None:
    if not problems:
        return
    where = f" in {origin}" if origin else ""
    lines = [f"Bad OHLCV data{where}:"] + [f"  - {p.describe()}" for p in problems]
    raise DataError(
        "\n".join(lines),
        hint="Fix or remove the rows named above in the source data and run again; "
        "nothing was trained, cached or promoted.",
    )


def validate_ohlcv(frame: pl.DataFrame, *, origin: str | None = None) -> pl.DataFrame:
    """Check an OHLCV frame and return it in canonical form, sorted by (ticker, date).

    Raises DataError naming the tickers and dates at fault for: missing or misnamed
    columns, dates or numbers that do not parse, missing/NaN/infinite prices, prices
    <= 0 or above :data:`MAX_PRICE`, high below low, open or close outside [low, high],
    negative or missing volume, dates after tomorrow, duplicate (ticker, date) rows, tickers
    whose close never changes, and an empty frame. ``origin`` (a file name) goes into
    the message. Unsorted input is sorted, not rejected; gaps between dates are normal.
    """
    frame = _rename_columns(frame, origin)
    if frame.height == 0:
        where = f" {origin}" if origin else ""
        raise DataError(
            f"The OHLCV data{where} has no rows.",
            hint="Give a file with a header and at least one row per ticker and date.",
        )
    frame = _coerce_types(frame, origin)
    problems = _value_problems(frame)
    frame = sort_ohlcv(frame)
    problems.extend(_duplicate_problems(frame))
    problems.extend(_constant_price_problems(frame))
    raise_problems(problems, origin)
    return frame


def _rename_columns(frame: pl.DataFrame, origin: str | None) -> pl.DataFrame:
    import polars as pl

    mapping: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in frame.columns:
        key = normalize_column_name(name)
        if key in seen:
            where = f" in {origin}" if origin else ""
            raise DataError(
                f"Columns {seen[key]!r} and {name!r}{where} both mean {key!r}.",
                hint="Keep one of them; column names are matched ignoring case.",
            )
        seen[key] = name
        mapping[name] = key
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if missing:
        found = list(frame.columns)
        where = f" in {origin}" if origin else ""
        advice = []
        for col in missing:
            close = difflib.get_close_matches(col, [normalize_column_name(f) for f in found], n=1)
            if close:
                advice.append(f"rename {seen[close[0]]!r} to {col!r}")
        hint = (
            "Expected columns (any case): " + ", ".join(REQUIRED_COLUMNS) + ", optional adj_close."
        )
        if advice:
            hint = "Did you mean to " + "; ".join(advice) + "? " + hint
        raise DataError(
            f"Missing column{'s' if len(missing) > 1 else ''}{where}: {', '.join(missing)} "
            f"(found: {', '.join(found) or 'none'}).",
            hint=hint,
        )
    frame = frame.rename(mapping).select([c for c in OHLCV_COLUMNS if c in seen])
    if "adj_close" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("adj_close"))
    return frame


def _coerce_types(frame: pl.DataFrame, origin: str | None) -> pl.DataFrame:  # noqa: C901 - a case per column kind and per way its text can fail to parse
    """Dates to pl.Date, tickers to text, numbers to Float64; text that does not parse is
    reported with its ticker and row, not silently turned into null."""
    import polars as pl

    schema = ohlcv_schema()
    if frame.schema == pl.Schema(schema):
        return frame
    problems: list[Problem] = []
    row = pl.int_range(1, pl.len() + 1).alias("_row")

    ticker = pl.col("ticker")
    if frame.schema["ticker"] != pl.String:
        ticker = ticker.cast(pl.String)
    ticker = ticker.str.strip_chars().str.to_uppercase()

    date_expr, date_ok = _date_expression(frame.schema["date"])
    exprs = [date_expr.alias("date"), ticker.alias("ticker")]
    checks = [row, pl.col("date").alias("_raw_date"), ticker.alias("_ticker")]
    if date_ok is not None:
        checks.append(date_ok.alias("_date_ok"))
    for col in NUMERIC_COLUMNS:
        dtype = frame.schema[col]
        if dtype == pl.Float64:
            exprs.append(pl.col(col))
            continue
        if dtype == pl.String:
            cast = pl.col(col).str.strip_chars().cast(pl.Float64, strict=False)
            checks.append((pl.col(col).is_not_null() & cast.is_null()).alias(f"_bad_{col}"))
        elif dtype.is_numeric() or dtype == pl.Null:
            cast = pl.col(col).cast(pl.Float64)
        else:
            where = f" in {origin}" if origin else ""
            raise DataError(
                f"Column {col!r}{where} holds {dtype}, not numbers.",
                hint=f"Make {col!r} a numeric column.",
            )
        exprs.append(cast.alias(col))

    annotated = frame.with_columns(checks)
    if "_date_ok" in annotated.columns:
        bad = annotated.filter(~pl.col("_date_ok"))
        if bad.height:
            problems.append(
                Problem(
                    "dates that are not ISO dates (YYYY-MM-DD) or timestamps",
                    bad.height,
                    _examples_raw(bad, "_raw_date"),
                    "Write dates like 2024-01-31 or 2024-01-31T00:00:00.",
                )
            )
    for col in NUMERIC_COLUMNS:
        flag = f"_bad_{col}"
        if flag in annotated.columns:
            bad = annotated.filter(pl.col(flag))
            if bad.height:
                problems.append(
                    Problem(
                        f"non-numeric values in {col!r}",
                        bad.height,
                        _examples_raw(bad, col),
                        f"Put plain numbers in {col!r} (no currency signs or text).",
                    )
                )
    raise_problems(problems, origin)
    return frame.select(exprs).cast(schema)  # type: ignore[arg-type]


def _date_expression(dtype: pl.DataType) -> tuple[pl.Expr, pl.Expr | None]:
    """The expression giving a pl.Date, and one that is False where the text does not parse.

    Timestamps keep their wall-clock date: '2024-01-02 00:00:00-05:00' is a bar of
    2024-01-02 on its exchange, whatever day it is in UTC."""
    import polars as pl

    col = pl.col("date")
    if dtype == pl.Date:
        return col, None
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            col = col.dt.replace_time_zone(None)
        return col.dt.date(), None
    if dtype == pl.String:
        text = col.str.strip_chars()
        parsed = text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
        rest = text.str.slice(10)
        # After the date: nothing, or a time part ('T'/' ' then digits), optionally a zone.
        rest_ok = (rest == "") | rest.str.contains(
            r"^[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"
        )
        ok = parsed.is_not_null() & rest_ok.fill_null(False)
        return pl.when(ok).then(parsed).otherwise(None), ok
    raise DataError(
        f"Column 'date' holds {dtype}; expected dates or ISO date text.",
        hint="Write dates like 2024-01-31.",
    )


def _value_problems(frame: pl.DataFrame) -> list[Problem]:
    """Every value check at once; details are gathered only for checks that fail."""
    import polars as pl

    tol = OHLC_TOLERANCE
    o, h, lo, c, v = (pl.col(n) for n in ("open", "high", "low", "close", "volume"))
    prices = [pl.col(n) for n in PRICE_COLUMNS]
    latest = datetime.now(UTC).date() + timedelta(days=FUTURE_GRACE_DAYS)
    checks: dict[str, tuple[pl.Expr, str, str]] = {
        "future": (
            pl.col("date") > latest,
            f"rows dated in the future (after {latest.isoformat()})",
            "Market data cannot be newer than today; check the dates (a wrong year or "
            "day/month swap?) or drop those rows.",
        ),
        "ticker": (
            pl.col("ticker").is_null() | (pl.col("ticker") == ""),
            "rows without a ticker",
            "Give every row a ticker symbol.",
        ),
        "date": (
            pl.col("date").is_null(),
            "rows without a date",
            "Give every row a date.",
        ),
        "missing": (
            pl.any_horizontal([p.is_null() | p.is_nan() for p in prices]),
            "missing or NaN prices",
            "Fill in the prices or drop those rows (gaps between dates are fine).",
        ),
        "infinite": (
            pl.any_horizontal([p.is_infinite() for p in prices]),
            "infinite prices",
            "Replace the infinite values with real prices or drop those rows.",
        ),
        "huge": (
            pl.any_horizontal([p > MAX_PRICE for p in prices]),
            f"prices above {MAX_PRICE:.0e}",
            "Such prices are a unit or scale error; correct those rows or drop them.",
        ),
        "nonpositive": (
            pl.any_horizontal([p <= 0 for p in prices]),
            "prices <= 0",
            "Prices must be positive; fix the rows or drop them.",
        ),
        "high_low": (
            h < lo * (1 - tol),
            "high below low",
            "Swap or correct high and low on those rows.",
        ),
        "outside": (
            (o > h * (1 + tol)) | (o < lo * (1 - tol)) | (c > h * (1 + tol)) | (c < lo * (1 - tol)),
            "open or close outside [low, high]",
            "Each bar needs low <= open, close <= high; correct those rows.",
        ),
        "volume_missing": (
            v.is_null() | v.is_nan() | v.is_infinite(),
            "missing, NaN or infinite volume",
            "Give a volume (0 is allowed) on every row.",
        ),
        "volume_negative": (
            v < 0,
            "negative volume",
            "Volume cannot be negative; correct those rows.",
        ),
        "adj_close": (
            pl.col("adj_close").is_not_null()
            & (
                pl.col("adj_close").is_nan()
                | pl.col("adj_close").is_infinite()
                | (pl.col("adj_close") <= 0)
            ),
            "adj_close that is NaN, infinite or <= 0",
            "Correct adj_close on those rows or drop the column.",
        ),
    }
    flags = frame.select(
        *[expr.fill_null(False).any().alias(name) for name, (expr, _, _) in checks.items()],
    ).row(0, named=True)
    problems = []
    for name, (expr, what, fix) in checks.items():
        if flags[name]:
            bad = frame.filter(expr.fill_null(False))
            problems.append(Problem(what, bad.height, _examples(bad), fix))
    return problems


def _duplicate_problems(frame: pl.DataFrame) -> list[Problem]:
    """Duplicates of a frame sorted by (ticker, date) are neighbours: no hashing needed."""
    import polars as pl

    t, d = pl.col("ticker"), pl.col("date")
    repeat = ((t == t.shift()) & (d == d.shift())).fill_null(False)
    bad = frame.filter(repeat)
    if bad.height == 0:
        return []
    bad = bad.unique(["ticker", "date"], maintain_order=True)
    return [
        Problem(
            "duplicate (ticker, date) rows",
            bad.height,
            _examples(bad),
            "Keep one row per ticker and date.",
        )
    ]


def _constant_price_problems(frame: pl.DataFrame) -> list[Problem]:
    """Tickers whose close never changes over two or more rows: there is no direction to
    learn, and every indicator divides by a range of zero."""
    import polars as pl

    stats = frame.group_by("ticker", maintain_order=True).agg(
        pl.len().alias("rows"),
        (pl.col("close").max() == pl.col("close").min()).alias("constant"),
        pl.col("date").min().alias("first"),
        pl.col("date").max().alias("last"),
    )
    bad = stats.filter(pl.col("constant").fill_null(False) & (pl.col("rows") > 1))
    if bad.height == 0:
        return []
    examples = tuple(
        f"{t} {first} to {last}"
        for t, first, last in bad.head(MAX_EXAMPLES).select("ticker", "first", "last").iter_rows()
    )
    return [
        Problem(
            "tickers whose close price never changes",
            int(bad.get_column("rows").sum()),
            examples,
            "Constant prices carry no direction to learn (a placeholder or a halted "
            "listing?); give real prices or leave those tickers out (--tickers).",
        )
    ]


def _examples(bad: pl.DataFrame) -> tuple[str, ...]:
    rows = bad.head(MAX_EXAMPLES).select("ticker", "date").iter_rows()
    return tuple(f"{t or '<no ticker>'} {d or '<no date>'}" for t, d in rows)


def _examples_raw(bad: pl.DataFrame, col: str) -> tuple[str, ...]:
    rows = bad.head(MAX_EXAMPLES).select("_row", "_ticker", col).iter_rows()
    return tuple(f"row {r} {t or '<no ticker>'} {v!r}" for r, t, v in rows)


def sort_ohlcv(frame: pl.DataFrame) -> pl.DataFrame:
    """Sorted by (ticker, date); a frame already in order (the usual case) is not copied."""
    import polars as pl

    t, d = pl.col("ticker"), pl.col("date")
    # Equal neighbours count as in order here; _duplicate_problems reports them.
    in_order = (t > t.shift()) | ((t == t.shift()) & (d >= d.shift()))
    if frame.height > 1 and not frame.select(in_order.slice(1).all()).item():
        frame = frame.sort("ticker", "date", maintain_order=True)
    return frame


def tickers_in(frame: pl.DataFrame) -> list[str]:
    """Tickers of a canonical frame (sorted by ticker), in order."""
    # Run-length encoding of the sorted column: no hashing of a million strings.
    return frame.get_column("ticker").rle().struct.field("value").to_list()


def describe_list(items: Iterable[str], limit: int = 10) -> str:
    """'A, B, C' or 'A, B, ... and 12 more' for messages."""
    items = list(items)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
