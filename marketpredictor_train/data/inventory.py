"""What is in the market-data cache and how current it is (for ``mptrain data info``),
and the per-ticker summary of a loaded frame (for ``mptrain data check``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marketpredictor_train.data.cache import CacheCorrupt, OhlcvCache
from marketpredictor_train.data.yahoo import SOURCE, window

if TYPE_CHECKING:
    import polars as pl

    from marketpredictor_train.config import Settings


@dataclass(frozen=True, slots=True)
class CachedTicker:
    """One cache file: its bars, size and how far behind Yahoo it may be."""

    ticker: str
    status: str  # fresh | stale | corrupt
    rows: int
    first: dt.date | None
    last: dt.date | None
    size_bytes: int
    checked_through: dt.date | None
    fetched_at: dt.datetime | None
    days_behind: int | None
    problem: str | None


@dataclass(frozen=True)
class CacheInventory:
    """Every cached ticker of the yahoo source, as ``mptrain data info`` shows them."""

    directory: Path
    expected_through: dt.date
    tickers: tuple[CachedTicker, ...]
    missing: tuple[str, ...]

    @property
    def total_bytes(self) -> int:
        return sum(t.size_bytes for t in self.tickers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "expected_through": self.expected_through.isoformat(),
            "total_bytes": self.total_bytes,
            "missing": list(self.missing),
            "tickers": [
                {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in asdict(t).items()}
                for t in self.tickers
            ],
        }


def cache_inventory(settings: Settings, *, verify: bool = False) -> CacheInventory:
    """Describe the cache without touching the network.

    Reads only the Parquet footers, unless ``verify``: then every file is read in full
    and checked (fingerprint and OHLCV checks) the way a run would. With ``tickers`` set,
    only those are listed and the ones with no file are named in ``missing``."""
    cache = OhlcvCache(settings.cache_dir, SOURCE)
    _, through = window(settings)
    names = list(settings.tickers) if settings.tickers else cache.cached_tickers()
    rows: list[CachedTicker] = []
    missing: list[str] = []
    for ticker in names:
        entry = cache.entry(ticker)
        if entry is None:
            missing.append(ticker)
            continue
        problem = entry.problem
        if problem is None and verify:
            try:
                cache.read(ticker)
            except CacheCorrupt as exc:
                problem = str(exc)
        meta = entry.meta
        if problem is not None or meta is None:
            rows.append(
                CachedTicker(
                    ticker, "corrupt", 0, None, None, entry.size, None, None, None, problem
                )
            )
            continue
        behind = max(0, (through - meta.checked_through).days)
        rows.append(
            CachedTicker(
                ticker=ticker,
                status="fresh" if behind == 0 else "stale",
                rows=meta.rows,
                first=meta.first,
                last=meta.last,
                size_bytes=entry.size,
                checked_through=meta.checked_through,
                fetched_at=meta.fetched_at,
                days_behind=behind,
                problem=None,
            )
        )
    return CacheInventory(cache.dir, through, tuple(rows), tuple(missing))


def ticker_summary(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows, first and last date per ticker of a canonical frame."""
    import polars as pl

    stats = (
        frame.group_by("ticker", maintain_order=True)
        .agg(
            pl.len().alias("rows"),
            pl.col("date").min().alias("first"),
            pl.col("date").max().alias("last"),
        )
        .sort("ticker")
    )
    return list(stats.iter_rows(named=True))
