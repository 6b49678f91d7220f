"""The yahoo source: daily bars from Yahoo Finance through yfinance, kept in the cache.

``load_yahoo`` is what ``load_ohlcv`` calls for ``--source yahoo``; ``fetch_market_data``
is ``mptrain data fetch``. The download, the frame conversion and the cache refresh live
in ``yahoo_download``, ``yahoo_convert`` and ``yahoo_refresh``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from marketpredictor_train.data.cache import OhlcvCache
from marketpredictor_train.data.schema import describe_list
from marketpredictor_train.data.sources import EMPTY_DATASET, SOURCE_YAHOO, source_kind
from marketpredictor_train.data.yahoo_convert import frames_from_download, sanitize_bars
from marketpredictor_train.data.yahoo_download import (
    MAX_DELAY_S,
    REQUEST_TIMEOUT_S,
    Backoff,
    Downloaded,
    download_daily,
    is_transient,
)
from marketpredictor_train.data.yahoo_refresh import (
    OVERLAP_DAYS,
    READJUST_RTOL,
    START_MARGIN_DAYS,
    RefreshReport,
    TickerRefresh,
    refresh_cache,
    universe,
    window,
)
from marketpredictor_train.errors import DataError
from marketpredictor_train.progress import ProgressCallback

if TYPE_CHECKING:
    import polars as pl

    from marketpredictor_train.config import Settings

__all__ = [
    "MAX_DELAY_S",
    "OVERLAP_DAYS",
    "READJUST_RTOL",
    "REQUEST_TIMEOUT_S",
    "SOURCE",
    "START_MARGIN_DAYS",
    "Backoff",
    "Downloaded",
    "RefreshReport",
    "TickerRefresh",
    "download_daily",
    "fetch_market_data",
    "frames_from_download",
    "is_transient",
    "load_yahoo",
    "refresh_cache",
    "sanitize_bars",
    "universe",
    "window",
]

log = structlog.get_logger(__name__)

SOURCE = SOURCE_YAHOO


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
    settings: Settings,
    asked: Sequence[str],
    got: int,
    dropped: dict[str, str],
    *,
    fetching: bool = False,
) -> None:
    """Fail with the seed's message when too few of the asked tickers have data; the hint
    of ``fetching`` (`mptrain data fetch` itself) does not suggest running it again."""
    share = got / len(asked) if asked else 0.0
    reasons = _reasons(dropped)
    hint = (
        "Check your internet connection and that Yahoo Finance is reachable "
        "(https://finance.yahoo.com); try a shorter window with --period 1y or fewer "
        "--tickers; "
        + (
            "run again later, or work from what is cached with --offline (see 'mptrain data info')."
            if fetching
            else "run 'mptrain data fetch' to fill the cache, or train from it with --offline."
        )
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


def _reasons(dropped: dict[str, str], shown: int = 5) -> str:
    """Why tickers were left out, one cause at a time: 'AAPL, MSFT and 38 more: the
    network is unreachable (...)', not forty copies of it."""
    by_reason: dict[str, list[str]] = {}
    for ticker, why in dropped.items():
        by_reason.setdefault(why, []).append(ticker)
    parts = [
        f"{describe_list(tickers, limit=3)}: {why}"
        for why, tickers in list(by_reason.items())[:shown]
    ]
    if len(by_reason) > shown:
        rest = sum(len(t) for t in list(by_reason.values())[shown:])
        parts.append(f"and {rest} more for other reasons")
    return "; ".join(parts)


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
    _check_enough(
        settings, refreshed.tickers, len(refreshed.usable), refreshed.failed, fetching=True
    )
    return refreshed
