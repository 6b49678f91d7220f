"""The data commands: fill the Yahoo cache, list what it holds, and load a source through
every input check without training."""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketpredictor_train.results import DataCheckResult, DataFetchResult, DataInfoResult

if TYPE_CHECKING:
    from marketpredictor_train.config import Settings
    from marketpredictor_train.progress import ProgressCallback


def fetch_data(
    settings: Settings, *, full: bool = False, progress: ProgressCallback | None = None
) -> DataFetchResult:
    """Bring the cache up to date for the settings' tickers and period (``full``: download
    the whole period again). DataError (exit 1) when too few tickers could be fetched."""
    from marketpredictor_train.data import fetch_market_data

    report = fetch_market_data(settings, full=full, progress=progress)
    return DataFetchResult(report=report, cache_dir=str(settings.cache_dir))


def data_info(settings: Settings, *, verify: bool = False) -> DataInfoResult:
    """The cache, per ticker, without the network (``verify``: read every file in full)."""
    from marketpredictor_train.data import cache_inventory

    return DataInfoResult(inventory=cache_inventory(settings, verify=verify))


def check_data(
    settings: Settings, *, min_history: int = 0, progress: ProgressCallback | None = None
) -> DataCheckResult:
    """Load the source exactly as `train` does, through every input check; DataError
    (exit 1) names the tickers and rows at fault."""
    from marketpredictor_train.data import load_ohlcv, ticker_summary

    loaded = load_ohlcv(settings, min_history=min_history, progress=progress)
    return DataCheckResult(loaded=loaded, tickers=ticker_summary(loaded.frame))
