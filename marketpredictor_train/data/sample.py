"""The ``sample`` source: real daily prices that ship with the ``bokeh-sampledata``
dependency, so training works offline on a fresh machine.

Provenance: Quandl WIKI Prices (declared public domain by Quandl), as redistributed in
bokeh-sampledata's ``stocks.csv.gz``: AAPL, GOOG (Google's pre-2014 class A history),
IBM and MSFT from 2000-03-01 (GOOG from 2004-08-19) to 2013-03-01, and a short FB series.

The file's open/high/low/close/volume are as traded, so AAPL's 2:1 split of 2005-02-28
shows as a halving. We scale open/high/low/close by adj_close / close (the source's split-
and dividend-adjustment factor of that day), which makes close equal adj_close and leaves
no split jumps, and we express volume in today's shares by undoing the splits only; that
matches what the yahoo source gets from Yahoo with auto_adjust.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

import structlog

from marketpredictor_train.data.schema import validate_ohlcv
from marketpredictor_train.errors import DataError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    import polars as pl

log = structlog.get_logger(__name__)

SAMPLE_PACKAGE = "bokeh_sampledata"
SAMPLE_FILE = ("_data", "stocks.csv.gz")
# A day-to-day change of the adjustment factor this large is a split, not a dividend
# (dividends move it by a few percent at most).
_SPLIT_THRESHOLD = 1.4


def sample_data_file() -> Traversable:
    """The installed sample CSV (inside the bokeh-sampledata package)."""
    try:
        ref = resources.files(SAMPLE_PACKAGE).joinpath(*SAMPLE_FILE)
    except ModuleNotFoundError as exc:
        raise DataError(
            "The sample data is not installed (package bokeh-sampledata is missing).",
            hint="Reinstall mptrain with its dependencies (uv sync), or use --source yahoo "
            "or --source PATH.",
        ) from exc
    if not ref.is_file():
        raise DataError(
            f"The sample data file {'/'.join(SAMPLE_FILE)} is missing from bokeh-sampledata.",
            hint="Reinstall bokeh-sampledata (uv sync --reinstall-package bokeh-sampledata).",
        )
    return ref


def sample_data_path() -> str:
    """Where the sample CSV lives, as text (for messages and install checks)."""
    return str(sample_data_file())


def load_sample() -> pl.DataFrame:
    """All sample tickers, split- and dividend-adjusted, validated and sorted."""
    import polars as pl

    source = sample_data_file()
    # as_file: a real path even when the package is installed zipped.
    with resources.as_file(source) as path:
        raw = pl.read_csv(path, schema_overrides={"Volume": pl.Float64, "Date": pl.String})
    frame = validate_ohlcv(raw, origin="the sample data")
    factor = pl.col("adj_close") / pl.col("close")
    step = (factor / factor.shift().over("ticker")).fill_null(1.0)
    split = (
        pl.when((step > _SPLIT_THRESHOLD) | (step < 1 / _SPLIT_THRESHOLD)).then(step).otherwise(1.0)
    )
    # Shares of a day expressed in the last day's shares: the product of later splits.
    later_splits = split.reverse().cum_prod().reverse().over("ticker") / split
    adjusted = frame.with_columns(
        *[(pl.col(c) * factor).alias(c) for c in ("open", "high", "low")],
        pl.col("adj_close").alias("close"),
        (pl.col("volume") * later_splits).alias("volume"),
    )
    log.debug("sample data loaded", rows=adjusted.height, file=str(source))
    return adjusted
