"""Market data: the yahoo, sample and file sources, the OHLCV checks and the Parquet cache.

The one entry point for a run is :func:`load_ohlcv`; :func:`validate_ohlcv` is the set of
checks every source goes through.
"""

from marketpredictor_train.data.inventory import CacheInventory, cache_inventory, ticker_summary
from marketpredictor_train.data.loader import LoadedData, load_ohlcv
from marketpredictor_train.data.schema import OHLCV_COLUMNS, validate_ohlcv
from marketpredictor_train.data.universe import DEFAULT_UNIVERSE, SAMPLE_TICKERS
from marketpredictor_train.data.yahoo import RefreshReport, fetch_market_data

__all__ = [
    "DEFAULT_UNIVERSE",
    "OHLCV_COLUMNS",
    "SAMPLE_TICKERS",
    "CacheInventory",
    "LoadedData",
    "RefreshReport",
    "cache_inventory",
    "fetch_market_data",
    "load_ohlcv",
    "ticker_summary",
    "validate_ohlcv",
]
