"""Keeping the yahoo cache current: which days each ticker lacks, an incremental
download of them, and a full refetch when Yahoo has re-adjusted the history.

Bars are requested up to yesterday (UTC), so an unfinished day is never cached. A
second run asks only for the days after the cached ones, with a few days of overlap: if
the overlap disagrees, Yahoo has re-adjusted the history (a dividend or a split) and
the ticker is fetched again in full.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from marketpredictor_train.data.cache import CacheCorrupt, OhlcvCache
from marketpredictor_train.data.schema import describe_list
from marketpredictor_train.data.sources import SOURCE_YAHOO, years_before
from marketpredictor_train.data.universe import DEFAULT_UNIVERSE
from marketpredictor_train.data.yahoo_download import Backoff, download_daily
from marketpredictor_train.progress import ProgressCallback, ProgressEvent

if TYPE_CHECKING:
    import polars as pl

    from marketpredictor_train.config import Settings

log = structlog.get_logger(__name__)

# Extra calendar days fetched before the period so the window is full after trimming.
START_MARGIN_DAYS = 7
# Calendar days re-fetched before the last cached bar to detect re-adjusted history.
OVERLAP_DAYS = 10
# Relative change of an overlapping close that means Yahoo re-adjusted the history.
READJUST_RTOL = 1e-6


# Patched by tests: the date the cache window ends before.
def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True, slots=True)
class TickerRefresh:
    """What a refresh did for one ticker."""

    ticker: str
    status: str  # fresh | updated | downloaded | refetched | stale | failed
    rows: int = 0
    new_rows: int = 0
    last: dt.date | None = None
    detail: str = ""


@dataclass(frozen=True)
class RefreshReport:
    """Outcome of bringing the cache up to date for a set of tickers."""

    tickers: tuple[str, ...]
    start: dt.date
    through: dt.date
    results: dict[str, TickerRefresh]
    retries: int

    @property
    def failed(self) -> dict[str, str]:
        return {t: r.detail for t, r in self.results.items() if r.status == "failed"}

    @property
    def usable(self) -> list[str]:
        return [t for t in self.tickers if self.results[t].status != "failed"]

    def to_dict(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "through": self.through.isoformat(),
            "retries": self.retries,
            "failed": self.failed,
            "tickers": [
                {
                    "ticker": r.ticker,
                    "status": r.status,
                    "rows": r.rows,
                    "new_rows": r.new_rows,
                    "last": r.last.isoformat() if r.last else None,
                    "detail": r.detail,
                }
                for r in (self.results[t] for t in self.tickers)
            ],
        }


def window(settings: Settings, on: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """[start, through] to hold in the cache: the period plus a margin, up to the last
    weekday before today (bars of today may be unfinished)."""
    day = on or today()
    through = day - dt.timedelta(days=1)
    while through.weekday() >= 5:
        through -= dt.timedelta(days=1)
    start = years_before(through, settings.period_years) - dt.timedelta(days=START_MARGIN_DAYS)
    return start, through


def universe(settings: Settings) -> tuple[str, ...]:
    return tuple(settings.tickers) if settings.tickers else DEFAULT_UNIVERSE


def refresh_cache(  # noqa: C901, PLR0915 - one pass over the tickers with a case per cache state
    settings: Settings,
    *,
    full: bool = False,
    progress: ProgressCallback | None = None,
    rng: random.Random | None = None,
) -> RefreshReport:
    """Bring the cache up to date for the settings' tickers and period.

    Fresh tickers are not touched; stale ones get only the missing recent days (plus
    an overlap that detects re-adjusted history); missing, corrupt or too-short ones
    are fetched in full (all of them with ``full``). A ticker that fails to download
    but has cached bars keeps them (status 'stale'). Offline runs never get here: they
    read the cache as it is (see load_yahoo).
    """
    if settings.offline:
        raise ValueError("refresh_cache downloads; offline runs read the cache with load_yahoo")
    cache = OhlcvCache(settings.cache_dir, SOURCE_YAHOO)
    tickers = universe(settings)
    start, through = window(settings)
    results: dict[str, TickerRefresh] = {}
    plan: dict[dt.date, list[str]] = defaultdict(list)
    incremental: set[str] = set()
    for ticker in tickers:
        entry = cache.entry(ticker)
        if entry is not None and entry.problem is not None:
            log.warning("cache file corrupt; fetching again", ticker=ticker, problem=entry.problem)
        meta = entry.meta if entry is not None else None
        if meta is not None and not full and meta.covered_from <= start:
            if meta.checked_through >= through:
                results[ticker] = TickerRefresh(ticker, "fresh", meta.rows, 0, meta.last)
                continue
            plan[meta.last - dt.timedelta(days=OVERLAP_DAYS)].append(ticker)
            incremental.add(ticker)
        else:
            plan[start].append(ticker)

    backoff = Backoff.from_settings(settings)
    end = through + dt.timedelta(days=1)  # yfinance's end is exclusive
    retries = 0
    refetch: list[str] = []
    total = sum(len(group) for group in plan.values())
    done = 0
    for fetch_from, group in sorted(plan.items()):
        got = download_daily(
            group,
            fetch_from,
            end,
            backoff=backoff,
            batch_size=settings.download_batch_size,
            progress=_shifted(progress, done, total),
            rng=rng,
        )
        done += len(group)
        retries += got.retries
        for ticker in group:
            if ticker in got.frames:
                outcome = _store(
                    cache, ticker, got.frames[ticker], start, through, ticker in incremental
                )
                if outcome is None:
                    refetch.append(ticker)
                else:
                    results[ticker] = outcome
            else:
                why = got.failed.get(ticker, "no data from Yahoo")
                results[ticker] = _failed_result(cache, ticker, why, through, ticker in incremental)
    if refetch:
        log.info(
            "Yahoo re-adjusted the history (dividend or split); fetching again",
            tickers=describe_list(refetch),
        )
        got = download_daily(
            refetch,
            start,
            end,
            backoff=backoff,
            batch_size=settings.download_batch_size,
            progress=progress,
            rng=rng,
        )
        retries += got.retries
        for ticker in refetch:
            if ticker in got.frames:
                meta = cache.merge(
                    ticker,
                    got.frames[ticker],
                    covered_from=start,
                    checked_through=through,
                    replace=True,
                )
                results[ticker] = TickerRefresh(
                    ticker, "refetched", meta.rows, meta.rows, meta.last
                )
            else:
                why = got.failed.get(ticker, "no data from Yahoo")
                results[ticker] = _failed_result(cache, ticker, why, through, True)
    report_ = RefreshReport(tickers, start, through, results, retries)
    # One line per cause: forty tickers that failed for one reason (no network) are one line.
    by_reason: dict[str, list[str]] = {}
    for ticker, why in report_.failed.items():
        by_reason.setdefault(why, []).append(ticker)
    for why, left_out in by_reason.items():
        if len(left_out) == 1:
            log.warning("ticker left out", ticker=left_out[0], reason=why)
        else:
            log.warning(
                "tickers left out", tickers=describe_list(left_out), count=len(left_out), reason=why
            )
    return report_


def _shifted(progress: ProgressCallback | None, done: int, total: int) -> ProgressCallback | None:
    """Progress of one group of tickers as part of the whole download."""
    if progress is None:
        return None

    def forward(event: ProgressEvent) -> None:
        progress(ProgressEvent(event.stage, done + event.completed, total, event.description))

    return forward


def _store(
    cache: OhlcvCache,
    ticker: str,
    fresh: pl.DataFrame,
    start: dt.date,
    through: dt.date,
    incremental: bool,
) -> TickerRefresh | None:
    """Write downloaded bars; None when the overlap shows re-adjusted history."""
    if not incremental:
        meta = cache.merge(ticker, fresh, covered_from=start, checked_through=through, replace=True)
        return TickerRefresh(ticker, "downloaded", meta.rows, meta.rows, meta.last)
    try:
        cached, old = cache.read(ticker)
    except (FileNotFoundError, CacheCorrupt):
        return None
    if _readjusted(cached, fresh):
        return None
    meta = cache.merge(ticker, fresh, covered_from=old.covered_from, checked_through=through)
    return TickerRefresh(ticker, "updated", meta.rows, max(0, meta.rows - old.rows), meta.last)


def _readjusted(cached: pl.DataFrame, fresh: pl.DataFrame) -> bool:
    import polars as pl

    both = cached.select("date", "close").join(
        fresh.select("date", pl.col("close").alias("new")), on="date", how="inner"
    )
    if both.height == 0:
        # No common day: the cached tail cannot be checked, so do not stitch onto it.
        return True
    worst = both.select(((pl.col("new") / pl.col("close")) - 1).abs().max()).item()
    return bool(worst > READJUST_RTOL)


def _failed_result(
    cache: OhlcvCache, ticker: str, why: str, through: dt.date, incremental: bool
) -> TickerRefresh:
    entry = cache.entry(ticker)
    if entry is not None and entry.usable and entry.meta is not None:
        if incremental and why.startswith("no data from Yahoo (no rows"):
            # Nothing newer (holidays): the cache is as current as Yahoo.
            meta = cache.touch(ticker, through) or entry.meta
            return TickerRefresh(ticker, "fresh", meta.rows, 0, meta.last)
        log.warning(
            "download failed; using cached bars",
            ticker=ticker,
            reason=why,
            cached_through=str(entry.meta.last),
        )
        return TickerRefresh(ticker, "stale", entry.meta.rows, 0, entry.meta.last, why)
    return TickerRefresh(ticker, "failed", detail=why)
