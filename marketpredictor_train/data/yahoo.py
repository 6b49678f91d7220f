"""The yahoo source: daily bars from Yahoo Finance through yfinance, kept in the cache.

Prices are split- and dividend-adjusted: ``yfinance.download(auto_adjust=True)`` scales
open/high/low/close by Yahoo's adjusted close / close of each day, so ``close`` is the
adjusted close (we also put it in ``adj_close``) and volume is split-adjusted as Yahoo
serves it. Bars are requested up to yesterday (UTC), so an unfinished day is never cached.

Tickers go to Yahoo in batches. yfinance catches errors per ticker and logs them; we
read those log records to tell a rate limit, a timeout or a 5xx (retried with bounded
exponential backoff and jitter) from a ticker Yahoo does not know (reported and left
out). A second run asks only for the days after the cached ones, with a few days of
overlap: if the overlap disagrees, Yahoo has re-adjusted the history (a dividend or a
split) and the ticker is fetched again in full.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from marketpredictor_train.data.cache import CacheCorrupt, OhlcvCache
from marketpredictor_train.data.schema import OHLCV_COLUMNS, describe_list
from marketpredictor_train.data.sources import (
    EMPTY_DATASET,
    SOURCE_YAHOO,
    source_kind,
    years_before,
)
from marketpredictor_train.data.universe import DEFAULT_UNIVERSE
from marketpredictor_train.errors import DataError
from marketpredictor_train.progress import ProgressCallback, ProgressEvent, report

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from marketpredictor_train.config import Settings

log = structlog.get_logger(__name__)

SOURCE = SOURCE_YAHOO
# First retry waits about BASE_DELAY_S, doubling each time up to MAX_DELAY_S; tests set
# the base to 0. Rate limits at Yahoo last from seconds to minutes.
BASE_DELAY_S = 2.0
MAX_DELAY_S = 60.0
# One HTTP request; the whole download is bounded by settings.download_timeout_s.
REQUEST_TIMEOUT_S = 30.0
# Extra calendar days fetched before the period so the window is full after trimming.
START_MARGIN_DAYS = 7
# Calendar days re-fetched before the last cached bar to detect re-adjusted history.
OVERLAP_DAYS = 10
# Relative change of an overlapping close that means Yahoo re-adjusted the history.
READJUST_RTOL = 1e-6

# Patched by tests: waiting and the clock of the retry loop, and today's date.
sleep: Callable[[float], None] = time.sleep
clock: Callable[[], float] = time.monotonic


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


_TRANSIENT = re.compile(
    r"YFRateLimitError|Too Many Requests|Rate ?limit|time[d ]?\s?out|Timeout|CURRENTLY DOWN"
    r"|ConnectionError|Connection (?:reset|refused|aborted)|Server Error|Bad Gateway"
    r"|Service Unavailable|Gateway Time|status_code = 5\d\d|HTTP Error 5\d\d|\b50[0234]\b",
    re.IGNORECASE,
)
_RATE_LIMITED = re.compile(r"YFRateLimitError|Too Many Requests|Rate ?limit", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Bounded exponential backoff with jitter: at most ``retries`` retries per batch,
    and never past ``budget_s`` seconds for the whole download."""

    retries: int
    budget_s: float
    base_delay_s: float = BASE_DELAY_S
    max_delay_s: float = MAX_DELAY_S

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Wait before retry number ``attempt`` (0-based): between half and all of
        base * 2**attempt, capped, so parallel clients do not retry in step."""
        cap = min(self.max_delay_s, self.base_delay_s * (2**attempt))
        return rng.uniform(cap / 2, cap)

    @classmethod
    def from_settings(cls, settings: Settings) -> Backoff:
        return cls(
            retries=settings.download_retries,
            budget_s=settings.download_timeout_s,
            base_delay_s=BASE_DELAY_S,
            max_delay_s=MAX_DELAY_S,
        )


@dataclass
class Downloaded:
    """What one download of many tickers produced."""

    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    retries: int = 0


@dataclass
class _Attempt:
    frames: dict[str, pl.DataFrame]
    transient: dict[str, str]
    permanent: dict[str, str]


# -- the network call ----------------------------------------------------------------


def download_daily(
    tickers: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    backoff: Backoff,
    batch_size: int,
    progress: ProgressCallback | None = None,
    rng: random.Random | None = None,
) -> Downloaded:
    """Daily adjusted bars of ``tickers`` for [start, end) in batches, with retries."""
    rng = rng or random.Random()
    result = Downloaded()
    deadline = clock() + backoff.budget_s
    total, done = len(tickers), 0
    for i in range(0, total, batch_size):
        batch = list(tickers[i : i + batch_size])
        if clock() >= deadline:
            for t in batch:
                result.failed[t] = (
                    f"not downloaded: the {backoff.budget_s:g} s download budget ran out"
                )
            continue
        got = _download_with_retries(batch, start, end, backoff, deadline, rng)
        result.frames.update(got.frames)
        result.failed.update(got.failed)
        result.retries += got.retries
        done += len(batch)
        report(progress, "download", done, total, batch[-1])
    return result


def _download_with_retries(
    batch: list[str],
    start: dt.date,
    end: dt.date,
    backoff: Backoff,
    deadline: float,
    rng: random.Random,
) -> Downloaded:
    result = Downloaded()
    pending = batch
    attempt = 0
    while pending:
        timeout = max(1.0, min(REQUEST_TIMEOUT_S, deadline - clock()))
        outcome = _download_once(pending, start, end, timeout)
        result.frames.update(outcome.frames)
        result.failed.update(outcome.permanent)
        if not outcome.transient:
            break
        pending = list(outcome.transient)
        reason = _summary(outcome.transient)
        if attempt >= backoff.retries:
            for t, why in outcome.transient.items():
                result.failed[t] = f"download failed after {attempt + 1} attempts: {why}"
            break
        wait = backoff.delay(attempt, rng)
        if clock() + wait > deadline:
            for t, why in outcome.transient.items():
                result.failed[t] = (
                    f"download failed: {why} (the {backoff.budget_s:g} s download budget ran out)"
                )
            break
        log.warning(
            "Yahoo download failed, retrying",
            tickers=describe_list(pending),
            reason=reason,
            attempt=attempt + 1,
            wait_s=round(wait, 2),
        )
        sleep(wait)
        attempt += 1
        result.retries += 1
    return result


def _download_once(tickers: list[str], start: dt.date, end: dt.date, timeout: float) -> _Attempt:
    """One yfinance.download call; per-ticker frames and why the others came back empty."""
    import yfinance as yf

    capture = _YFinanceErrors()
    yf_log = logging.getLogger("yfinance")
    propagate = yf_log.propagate
    yf_log.addHandler(capture)
    # yfinance logs each failure at ERROR; we report them ourselves, with the reason.
    yf_log.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = yf.download(
                tickers,
                start=start.isoformat(),
                end=end.isoformat(),
                interval="1d",
                auto_adjust=True,
                actions=False,
                group_by="column",
                multi_level_index=True,
                ignore_tz=True,
                keepna=False,
                progress=False,
                threads=min(len(tickers), 8),
                timeout=timeout,
            )
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}"
        bucket = dict.fromkeys(tickers, why)
        if is_transient(exc):
            return _Attempt({}, bucket, {})
        return _Attempt({}, {}, bucket)
    finally:
        yf_log.removeHandler(capture)
        yf_log.propagate = propagate

    frames = frames_from_download(raw, tickers)
    transient: dict[str, str] = {}
    permanent: dict[str, str] = {}
    empty = [t for t in tickers if t not in frames]
    for t in empty:
        why = capture.errors.get(t)
        if why is not None and _TRANSIENT.search(why):
            transient[t] = _friendly(why)
        elif why is not None:
            permanent[t] = f"no data from Yahoo: {_friendly(why)}"
        elif len(empty) == len(tickers):
            # Nothing at all and no reason given: an outage or a block, not n bad symbols.
            transient[t] = "Yahoo returned no data at all"
        else:
            permanent[t] = "no data from Yahoo (no rows in the requested window)"
    return _Attempt(frames, transient, permanent)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: rate limits, timeouts, dropped connections and 5xx answers."""
    from yfinance.exceptions import YFRateLimitError

    if isinstance(exc, YFRateLimitError | TimeoutError | ConnectionError):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {
        "Timeout",
        "ReadTimeout",
        "ConnectTimeout",
        "ConnectionError",
        "ChunkedEncodingError",
    }:
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return status == 429 or status >= 500
    return bool(_TRANSIENT.search(str(exc)))


class _YFinanceErrors(logging.Handler):
    """Collects yfinance's per-ticker error lines: "['AAPL', 'MSFT']: YFRateLimitError(...)"."""

    _LINE = re.compile(r"^\[(?P<tickers>[^\]]*)\]:\s*(?P<error>.+)$", re.DOTALL)

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.errors: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage().strip()
        except Exception:
            return
        match = self._LINE.match(text)
        if match is None:
            return
        for ticker in re.findall(r"'([^']+)'", match["tickers"]):
            self.errors[ticker.upper()] = match["error"].strip()


def _friendly(error: str) -> str:
    """ "YFPricesMissingError('possibly delisted; ...')" -> "possibly delisted; ..."."""
    match = re.match(r"^\w+\((['\"])(?P<text>.*)\1\)$", error.strip(), re.DOTALL)
    text = match["text"] if match else error
    if _RATE_LIMITED.search(text):
        text = f"rate limited by Yahoo ({text})"
    return text


def _summary(reasons: dict[str, str]) -> str:
    return describe_list(sorted(set(reasons.values())), limit=3)


# -- yfinance's frame to ours ----------------------------------------------------------


def frames_from_download(
    raw: pd.DataFrame | None, tickers: Sequence[str]
) -> dict[str, pl.DataFrame]:
    """Split yfinance.download's frame into one canonical frame per ticker with rows.

    Handles yfinance 1.x's shapes: MultiIndex columns (Price, Ticker) or (Ticker, Price),
    flat columns for one ticker, a naive or timezone-aware DatetimeIndex (the bar's date
    is its wall-clock date at the exchange), rows of NaN where a ticker had no bar.
    """
    import pandas as pd

    if raw is None or raw.empty:
        return {}
    frames: dict[str, pl.DataFrame] = {}
    columns = raw.columns
    if isinstance(columns, pd.MultiIndex):
        level = _ticker_level(columns, tickers)
        present = {str(t).upper(): t for t in columns.get_level_values(level).unique()}
        for ticker in tickers:
            key = present.get(ticker.upper())
            if key is None:
                continue
            part = raw.xs(key, axis=1, level=level)
            frame = _canonical(part, ticker)
            if frame is not None:
                frames[ticker] = frame
    elif len(tickers) == 1:
        frame = _canonical(raw, tickers[0])
        if frame is not None:
            frames[tickers[0]] = frame
    return frames


def _ticker_level(columns: pd.MultiIndex, tickers: Sequence[str]) -> int:
    names = [str(n).lower() if n is not None else "" for n in columns.names]
    if "ticker" in names:
        return names.index("ticker")
    wanted = {t.upper() for t in tickers}
    for level in range(columns.nlevels):
        if {str(v).upper() for v in columns.get_level_values(level)} & wanted:
            return level
    return columns.nlevels - 1


def _canonical(part: pd.DataFrame, ticker: str) -> pl.DataFrame | None:
    """One ticker's bars in our schema, Yahoo's bad bars left out (with a warning)."""
    import numpy as np
    import pandas as pd
    import polars as pl

    lower = {str(c).strip().lower(): c for c in part.columns}
    needed = ("open", "high", "low", "close", "volume")
    if any(n not in lower for n in needed):
        return None
    index = pd.DatetimeIndex(part.index)
    if index.tz is not None:
        index = index.tz_localize(None)
    values = {n: part[lower[n]].to_numpy(dtype="float64", na_value=np.nan) for n in needed}
    frame = pl.DataFrame(
        {
            "date": pl.Series(index.normalize().to_numpy()).dt.date(),
            "ticker": [ticker] * len(index),
            **values,
        }
    ).with_columns(
        pl.col("close").alias("adj_close"),
        pl.col("open", "high", "low", "close", "volume").fill_nan(None),
    )
    prices = [pl.col(c) for c in ("open", "high", "low", "close")]
    # Rows with no price at all are the union index of a batch, not bars.
    frame = frame.filter(~pl.all_horizontal([p.is_null() for p in prices]))
    frame = frame.unique("date", keep="last", maintain_order=True).sort("date")
    if frame.height == 0:
        return None
    frame = sanitize_bars(frame, ticker)
    if frame.height == 0:
        return None
    return frame.select(OHLCV_COLUMNS)


def sanitize_bars(frame: pl.DataFrame, ticker: str) -> pl.DataFrame:
    """Leave out Yahoo's broken bars (a missing price, <= 0, high below low, open or
    close outside [low, high], missing or negative volume) and say which. The user
    cannot fix Yahoo's data, and one bad day should not cost the whole ticker."""
    import polars as pl

    from marketpredictor_train.data.schema import OHLC_TOLERANCE as tol

    o, h, lo, c, v = (pl.col(n) for n in ("open", "high", "low", "close", "volume"))
    ok = (
        pl.all_horizontal([x.is_not_null() & x.is_finite() & (x > 0) for x in (o, h, lo, c)])
        & (h >= lo * (1 - tol))
        & (o <= h * (1 + tol))
        & (o >= lo * (1 - tol))
        & (c <= h * (1 + tol))
        & (c >= lo * (1 - tol))
        & v.is_not_null()
        & v.is_finite()
        & (v >= 0)
    ).fill_null(False)
    bad = frame.filter(~ok)
    if bad.height:
        log.warning(
            "leaving out broken Yahoo bars",
            ticker=ticker,
            rows=bad.height,
            dates=describe_list([str(d) for d in bad.get_column("date")], limit=5),
        )
        frame = frame.filter(ok)
    return frame


# -- cache orchestration ---------------------------------------------------------------


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


def refresh_cache(
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
    cache = OhlcvCache(settings.cache_dir, SOURCE)
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
    for ticker, why in report_.failed.items():
        log.warning("ticker left out", ticker=ticker, reason=why)
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


def load_yahoo(
    settings: Settings, *, progress: ProgressCallback | None = None
) -> tuple[pl.DataFrame, dict[str, str]]:
    """The settings' tickers from the cache after refreshing it (unless offline).

    Returns the frame of every usable ticker from the window start on, and the
    tickers left out with the reason. Fewer usable tickers than min_data_fraction of
    those asked for (or none): DataError "Dataset is empty after build_dataset"."""
    if settings.offline:
        return _load_offline(settings)
    refreshed = refresh_cache(settings, progress=progress)
    cache = OhlcvCache(settings.cache_dir, SOURCE)
    dropped = dict(refreshed.failed)
    frame, _, bad = cache.load(refreshed.usable, since=refreshed.start)
    if bad:
        log.warning("refetching cache files that failed their checks", tickers=describe_list(bad))
        for ticker in bad:
            cache.discard(ticker)
        again = refresh_cache(settings.model_copy(update={"tickers": list(bad)}), progress=progress)
        dropped.update(again.failed)
        if again.usable:
            import polars as pl

            extra, _, still_bad = cache.load(again.usable, since=refreshed.start)
            frame = pl.concat([frame, extra]).sort("ticker", "date")
            dropped.update(
                {t: f"cache file corrupt after refetch: {p}" for t, p in still_bad.items()}
            )
    for ticker, result in refreshed.results.items():
        if result.status == "stale" and ticker not in dropped:
            log.warning("using stale cached bars", ticker=ticker, detail=result.detail)
    got = frame.get_column("ticker").n_unique() if frame.height else 0
    _check_enough(settings, refreshed.tickers, got, dropped)
    return frame, dropped


def _load_offline(settings: Settings) -> tuple[pl.DataFrame, dict[str, str]]:
    """The cache as it is: no network, no refresh; corrupt files are left out."""
    cache = OhlcvCache(settings.cache_dir, SOURCE)
    tickers = universe(settings)
    start, through = window(settings)
    frame, metas, bad = cache.load(tickers, since=start)
    dropped = {t: f"cache file corrupt: {p} (offline: not refetched)" for t, p in bad.items()}
    for ticker in tickers:
        if ticker not in metas and ticker not in bad:
            dropped[ticker] = "not in the cache (offline: no download)"
    behind = {t: m for t, m in metas.items() if m.checked_through < through}
    if behind:
        oldest = min(m.checked_through for m in behind.values())
        log.warning(
            "offline: using cached bars that may be behind Yahoo",
            tickers=len(behind),
            checked_through=str(oldest),
            days_behind=(through - oldest).days,
        )
    got = len(metas)
    _check_enough(settings, tickers, got, dropped)
    return frame, dropped


def _check_enough(
    settings: Settings, asked: Sequence[str], got: int, dropped: dict[str, str]
) -> None:
    """Fail with the seed's message when too few of the asked tickers have data."""
    share = got / len(asked) if asked else 0.0
    reasons = "; ".join(f"{t}: {why}" for t, why in list(dropped.items())[:5])
    if len(dropped) > 5:
        reasons += f"; and {len(dropped) - 5} more"
    hint = (
        "Check your internet connection and that Yahoo Finance is reachable "
        "(https://finance.yahoo.com); try a shorter window with --period 1y or fewer "
        "--tickers; run 'mptrain data fetch' to fill the cache, or train from it with "
        "--offline."
    )
    if got == 0:
        where = " in the cache (--offline)" if settings.offline else ""
        raise DataError(
            f"{EMPTY_DATASET}: no data for any of the {len(asked)} tickers{where}. {reasons}",
            hint=hint,
        )
    if share < settings.min_data_fraction:
        raise DataError(
            f"{EMPTY_DATASET}: only {got} of {len(asked)} tickers could be loaded "
            f"({share:.0%}, below min_data_fraction {settings.min_data_fraction:.0%}). {reasons}",
            hint=hint + " Lower min_data_fraction to accept fewer tickers.",
        )


def fetch_market_data(
    settings: Settings, *, full: bool = False, progress: ProgressCallback | None = None
) -> RefreshReport:
    """Download into the cache what it lacks for the settings' tickers and period
    (everything with ``full``), e.g. to warm it in CI. Same failure rules as a run."""
    from marketpredictor_train.errors import ConfigError

    if source_kind(settings.source) != SOURCE:
        raise ConfigError(
            f"'mptrain data fetch' fills the Yahoo cache; the source is {settings.source!r}.",
            hint="Drop --source (or set it to yahoo); sample and file sources need no fetch.",
        )
    if settings.offline:
        raise ConfigError(
            "'mptrain data fetch' downloads, but offline is set (--offline or MPTRAIN_OFFLINE).",
            hint="Unset offline, or use 'mptrain data info' to inspect the cache.",
        )
    refreshed = refresh_cache(settings, full=full, progress=progress)
    _check_enough(settings, refreshed.tickers, len(refreshed.usable), refreshed.failed)
    return refreshed
