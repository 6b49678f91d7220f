"""The market-data cache: one Parquet file of daily bars per ticker, safe to share.

Layout: ``<cache_dir>/<source>/daily/<TICKER>.parquet`` (default cache_dir:
``$XDG_CACHE_HOME/mptrain`` or ``~/.cache/mptrain``; ``MPTRAIN_CACHE_DIR`` or
``--cache-dir`` override it). Each file carries, in its Parquet footer, what it holds
(rows, first/last date, the window it was fetched for, the last day Yahoo was asked
about) and a fingerprint of its values. A file is trusted only when its footer, schema,
row count, dates and fingerprint agree and its bars pass the OHLCV checks; anything else
is reported as corrupt so the caller refetches it.

Writes go to a temporary file in the same folder, are fsynced and then renamed over the
old file, under a per-ticker lock, so readers never see half a file and two processes
refreshing the same ticker merge their results instead of losing one.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import structlog

from marketpredictor_train.data.schema import OHLCV_COLUMNS, validate_ohlcv
from marketpredictor_train.errors import DataError
from marketpredictor_train.fileio import atomic_writer

if TYPE_CHECKING:
    import polars as pl

log = structlog.get_logger(__name__)

CACHE_FORMAT = 1
META_KEY = b"mptrain"
SUFFIX = ".parquet"
LOCK_TIMEOUT_S = 120.0
# Fingerprint sums are recomputed in another order when read back; this is far above
# that rounding noise and far below any real change of a price.
FINGERPRINT_RTOL = 1e-9
# Characters kept as they are in file names; anything else is percent-encoded, so
# 'BRK-B', '^GSPC', 'EURUSD=X' and '1518.T' map to readable, reversible names.
_SAFE = "-_.=^"


class CacheCorrupt(Exception):
    """A cache file that cannot be trusted; the message says why."""


@dataclass(frozen=True, slots=True)
class CacheMeta:
    """What a cache file says about itself (stored as JSON in the Parquet footer)."""

    ticker: str
    source: str
    rows: int
    first: dt.date
    last: dt.date
    covered_from: dt.date
    checked_through: dt.date
    fetched_at: dt.datetime
    price_sum: float
    volume_sum: float
    format: int = CACHE_FORMAT

    def to_json(self) -> bytes:
        data = asdict(self)
        for key in ("first", "last", "covered_from", "checked_through", "fetched_at"):
            data[key] = data[key].isoformat()
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: str | bytes) -> CacheMeta:
        data: dict[str, Any] = json.loads(raw)
        if data.get("format") != CACHE_FORMAT:
            raise CacheCorrupt(f"cache format {data.get('format')!r}, expected {CACHE_FORMAT}")
        for key in ("first", "last", "covered_from", "checked_through"):
            data[key] = dt.date.fromisoformat(data[key])
        data["fetched_at"] = dt.datetime.fromisoformat(data["fetched_at"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached ticker as its footer describes it (no data read)."""

    ticker: str
    path: Path
    size: int
    meta: CacheMeta | None
    problem: str | None

    @property
    def usable(self) -> bool:
        return self.meta is not None and self.problem is None


class OhlcvCache:
    """Per-ticker Parquet files of canonical OHLCV bars for one source."""

    def __init__(self, root: Path, source: str = "yahoo") -> None:
        self.root = Path(root).expanduser()
        self.source = source
        self.dir = self.root / source / "daily"

    # -- names ---------------------------------------------------------------------
    def path(self, ticker: str) -> Path:
        name = quote(ticker, safe=_SAFE)
        if name in {"", ".", ".."}:
            raise DataError(f"Ticker {ticker!r} cannot be cached.", hint="Check --tickers.")
        return self.dir / f"{name}{SUFFIX}"

    def cached_tickers(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(
            unquote(p.name[: -len(SUFFIX)])
            for p in self.dir.iterdir()
            if p.name.endswith(SUFFIX) and not p.name.startswith(".")
        )

    def lock(self, ticker: str):
        from filelock import FileLock

        self.dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path(ticker)) + ".lock", timeout=LOCK_TIMEOUT_S)

    # -- reading -------------------------------------------------------------------
    def entry(self, ticker: str) -> CacheEntry | None:
        """The footer of a ticker's file, checked; None when there is no file."""
        path = self.path(ticker)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        try:
            meta = self._read_footer(path, ticker)
        except CacheCorrupt as exc:
            return CacheEntry(ticker, path, size, None, str(exc))
        return CacheEntry(ticker, path, size, meta, None)

    def entries(self, tickers: Iterable[str] | None = None) -> list[CacheEntry]:
        names = self.cached_tickers() if tickers is None else list(tickers)
        return [e for e in (self.entry(t) for t in names) if e is not None]

    def _read_footer(self, path: Path, ticker: str) -> CacheMeta:
        import polars as pl

        try:
            # Polars reads only the footer's key/value pairs: ~3x faster than pyarrow's
            # full footer, which matters with hundreds of files per run.
            pairs = pl.read_parquet_metadata(path)
        except Exception as exc:  # truncated, not Parquet, unreadable ...
            raise CacheCorrupt(f"unreadable Parquet footer ({_first_line(exc)})") from exc
        raw = pairs.get(META_KEY.decode())
        if raw is None:
            raise CacheCorrupt("no mptrain metadata in the file")
        try:
            meta = CacheMeta.from_json(raw)
        except CacheCorrupt:
            raise
        except Exception as exc:
            raise CacheCorrupt(f"bad mptrain metadata ({_first_line(exc)})") from exc
        if meta.ticker != ticker or meta.source != self.source:
            raise CacheCorrupt(
                f"file holds {meta.source}:{meta.ticker}, not {self.source}:{ticker}"
            )
        return meta

    def read(self, ticker: str) -> tuple[pl.DataFrame, CacheMeta]:
        """One ticker's bars, fully verified; CacheCorrupt when they cannot be trusted."""
        import polars as pl

        path = self.path(ticker)
        if not path.exists():
            raise FileNotFoundError(path)
        meta = self._read_footer(path, ticker)
        try:
            frame = pl.read_parquet(path)
        except Exception as exc:
            raise CacheCorrupt(f"unreadable data ({_first_line(exc)})") from exc
        _check_schema(frame)
        frame, problems = verified(frame, {ticker: meta})
        if problems:
            raise CacheCorrupt(problems[ticker])
        return frame, meta

    def load(
        self, tickers: Sequence[str], since: dt.date | None = None
    ) -> tuple[pl.DataFrame, dict[str, CacheMeta], dict[str, str]]:
        """Bars of every usable cached ticker in one frame, rows from ``since`` on.

        Returns (frame, metadata of the loaded tickers, {ticker: problem} of files that
        failed a check). Tickers without a file are simply absent. One read of all files
        is the fast path; a failure there falls back to file-by-file to find the culprit.
        """
        import polars as pl

        entries = self.entries(tickers)
        bad = {e.ticker: e.problem for e in entries if e.problem is not None}
        good = [e for e in entries if e.problem is None]
        metas = {e.ticker: e.meta for e in good if e.meta is not None}
        frame = _empty_frame()
        if good:
            paths = [str(e.path) for e in sorted(good, key=lambda e: e.ticker)]
            try:
                frame = pl.scan_parquet(paths).collect()
                _check_schema(frame)
            except Exception:
                frame, unreadable = self._load_one_by_one(good)
                bad.update(unreadable)
                for ticker in unreadable:
                    metas.pop(ticker, None)
            frame, problems = verified(frame, metas)
            bad.update(problems)
            for ticker in problems:
                metas.pop(ticker, None)
        for ticker, problem in bad.items():
            log.warning("cache file cannot be trusted", ticker=ticker, problem=problem)
        if since is not None and any(m.first < since for m in metas.values()):
            frame = frame.filter(pl.col("date") >= since)
        return frame, metas, bad

    def _load_one_by_one(self, entries: list[CacheEntry]) -> tuple[pl.DataFrame, dict[str, str]]:
        import polars as pl

        frames, bad = [], {}
        for e in entries:
            try:
                part = pl.read_parquet(e.path)
                _check_schema(part)
                frames.append(part)
            except CacheCorrupt as exc:
                bad[e.ticker] = str(exc)
            except Exception as exc:
                bad[e.ticker] = f"unreadable data ({_first_line(exc)})"
        frame = pl.concat(frames) if frames else _empty_frame()
        return frame, bad

    # -- writing -------------------------------------------------------------------
    def write(
        self,
        ticker: str,
        frame: pl.DataFrame,
        *,
        covered_from: dt.date,
        checked_through: dt.date,
    ) -> CacheMeta:
        """Replace a ticker's file atomically with ``frame`` (canonical, one ticker)."""
        import pyarrow.parquet as pq

        if frame.height == 0:
            raise ValueError("refusing to cache an empty frame")
        frame = frame.select(OHLCV_COLUMNS).sort("date")
        meta = CacheMeta(
            ticker=ticker,
            source=self.source,
            rows=frame.height,
            first=frame.get_column("date").min(),  # type: ignore[arg-type]
            last=frame.get_column("date").max(),  # type: ignore[arg-type]
            covered_from=covered_from,
            checked_through=checked_through,
            fetched_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
            price_sum=_price_sum(frame),
            volume_sum=float(frame.get_column("volume").sum()),
        )
        table = frame.to_arrow().replace_schema_metadata({META_KEY: meta.to_json()})
        path = self.path(ticker)
        with atomic_writer(path) as fh:
            pq.write_table(table, fh, compression="zstd", write_page_checksum=True)
        return meta

    def merge(
        self,
        ticker: str,
        fresh: pl.DataFrame,
        *,
        covered_from: dt.date,
        checked_through: dt.date,
        replace: bool = False,
    ) -> CacheMeta:
        """Add freshly downloaded bars to a ticker's file, under its lock.

        New bars win on dates both hold. With ``replace`` the file is rewritten from
        ``fresh`` alone (a full refetch). A file another process wrote meanwhile is
        merged, not overwritten; a corrupt one is replaced.
        """
        import polars as pl

        with self.lock(ticker):
            current = None
            if not replace:
                try:
                    current, old = self.read(ticker)
                    covered_from = min(covered_from, old.covered_from)
                    checked_through = max(checked_through, old.checked_through)
                except FileNotFoundError:
                    current = None
                except CacheCorrupt as exc:
                    log.warning("replacing corrupt cache file", ticker=ticker, problem=str(exc))
                    current = None
            if current is not None:
                kept = current.join(fresh.select("date"), on="date", how="anti")
                fresh = pl.concat([kept, fresh.select(OHLCV_COLUMNS)])
            return self.write(
                ticker, fresh, covered_from=covered_from, checked_through=checked_through
            )

    def touch(self, ticker: str, checked_through: dt.date) -> CacheMeta | None:
        """Record that Yahoo had nothing newer (a holiday): only checked_through moves."""
        with self.lock(ticker):
            try:
                frame, meta = self.read(ticker)
            except (FileNotFoundError, CacheCorrupt):
                return None
            if meta.checked_through >= checked_through:
                return meta
            return self.write(
                ticker, frame, covered_from=meta.covered_from, checked_through=checked_through
            )

    def discard(self, ticker: str) -> None:
        with self.lock(ticker):
            self.path(ticker).unlink(missing_ok=True)


def verify(frame: pl.DataFrame, metas: dict[str, CacheMeta]) -> dict[str, str]:
    """Tickers whose bars in ``frame`` disagree with their footer or fail the OHLCV checks."""
    import polars as pl

    if not metas:
        return {}
    stats = frame.group_by("ticker").agg(
        pl.len().alias("rows"),
        pl.col("date").min().alias("first"),
        pl.col("date").max().alias("last"),
        (pl.col("open") + pl.col("high") + pl.col("low") + pl.col("close")).sum().alias("p"),
        pl.col("volume").sum().alias("v"),
    )
    seen = {row["ticker"]: row for row in stats.iter_rows(named=True)}
    problems: dict[str, str] = {}
    for ticker, meta in metas.items():
        row = seen.get(ticker)
        if row is None:
            problems[ticker] = "no rows for the ticker in its file"
        elif (row["rows"], row["first"], row["last"]) != (meta.rows, meta.first, meta.last):
            problems[ticker] = (
                f"holds {row['rows']} rows {row['first']}..{row['last']}, footer says "
                f"{meta.rows} rows {meta.first}..{meta.last}"
            )
        elif not _close(row["p"], meta.price_sum) or not _close(row["v"], meta.volume_sum):
            problems[ticker] = "values differ from the fingerprint written with them"
    return problems


def verified(
    frame: pl.DataFrame, metas: dict[str, CacheMeta]
) -> tuple[pl.DataFrame, dict[str, str]]:
    """The frame without the tickers that fail ``verify`` or the OHLCV checks, validated
    and sorted; and {ticker: problem} of those left out."""
    import polars as pl

    problems = verify(frame, metas)
    clean = frame.filter(~pl.col("ticker").is_in(list(problems))) if problems else frame
    if clean.height == 0:
        return clean, problems
    try:
        return validate_ohlcv(clean), problems
    except DataError:
        pass
    # Rare (a corrupted value that still matches its sums): find the tickers at fault.
    for ticker, part in clean.partition_by("ticker", as_dict=True).items():
        try:
            validate_ohlcv(part)
        except DataError as exc:
            problems[str(ticker[0])] = "bars fail the OHLCV checks: " + exc.message
    clean = frame.filter(~pl.col("ticker").is_in(list(problems)))
    return (validate_ohlcv(clean) if clean.height else clean), problems


def _check_schema(frame: pl.DataFrame) -> None:
    import polars as pl

    from marketpredictor_train.data.schema import ohlcv_schema

    if frame.schema != pl.Schema(ohlcv_schema()):
        raise CacheCorrupt(f"columns {dict(frame.schema)} are not the OHLCV schema")


def _close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=FINGERPRINT_RTOL, abs_tol=1e-6)


def _price_sum(frame: pl.DataFrame) -> float:
    import polars as pl

    return float(
        frame.select(
            (pl.col("open") + pl.col("high") + pl.col("low") + pl.col("close")).sum()
        ).item()
    )


def _empty_frame() -> pl.DataFrame:
    import polars as pl

    from marketpredictor_train.data.schema import ohlcv_schema

    return pl.DataFrame(schema=ohlcv_schema())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
