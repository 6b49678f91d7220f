"""``load_ohlcv``: from the configured source to the validated OHLCV frame a run trains on.

Every source ends in the same steps: keep the tickers asked for (reporting the absent),
cut the window to ``--period`` years counted back from the last date in the data, and
leave out tickers with too little history for the indicators and the horizon.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from marketpredictor_train.data.schema import describe_list
from marketpredictor_train.data.sources import (
    EMPTY_DATASET,
    INSUFFICIENT_DATA,
    SOURCE_SAMPLE,
    SOURCE_YAHOO,
    source_kind,
    years_before,
)
from marketpredictor_train.data.universe import SAMPLE_TICKERS
from marketpredictor_train.errors import DataError
from marketpredictor_train.progress import ProgressCallback, report

if TYPE_CHECKING:
    import polars as pl

    from marketpredictor_train.config import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LoadedData:
    """The OHLCV frame of a run and what happened on the way.

    ``frame`` has exactly the columns of OHLCV_COLUMNS (date: Date, ticker: String, the
    rest Float64; adj_close may be null), sorted by (ticker, date) and validated.
    ``dropped`` maps each ticker asked for but left out to the reason.
    """

    frame: pl.DataFrame
    source: str
    tickers: tuple[str, ...]
    dropped: dict[str, str]
    start: dt.date
    end: dt.date

    @property
    def rows(self) -> int:
        return self.frame.height


def load_ohlcv(
    settings: Settings,
    *,
    min_history: int = 0,
    progress: ProgressCallback | None = None,
) -> LoadedData:
    """Load, check and window the market data that ``settings`` describe.

    ``min_history``: tickers with fewer rows than this inside the period are left out
    with a warning; if none remain, DataError "Training failed - insufficient data".
    """
    kind = source_kind(settings.source)
    dropped: dict[str, str] = {}
    if kind == SOURCE_YAHOO:
        from marketpredictor_train.data.yahoo import load_yahoo

        frame, dropped = load_yahoo(settings, progress=progress)
        label = SOURCE_YAHOO
    else:
        if kind == SOURCE_SAMPLE:
            from marketpredictor_train.data.sample import load_sample

            full, default, label = load_sample(), SAMPLE_TICKERS, SOURCE_SAMPLE
        else:
            from marketpredictor_train.data.files import load_files

            full, default, label = load_files(settings.source), None, settings.source
        report(progress, "load", 1, 1, label)
        requested = tuple(settings.tickers) if settings.tickers else default
        frame, dropped = select_tickers(full, requested, label)

    frame = apply_period(frame, settings.period_years)
    frame, short = drop_short_history(frame, min_history, settings.period)
    dropped.update(short)
    return _result(frame, label, dropped)


def loaded_before(
    loaded: LoadedData, day: dt.date, settings: Settings, *, min_history: int = 0
) -> LoadedData:
    """What :func:`load_ohlcv` would have given on ``day``, before that day's prices were
    known: the rows of ``loaded`` dated before ``day``, cut to the period counted back
    from the last of them, without the tickers that have too little history there."""
    import polars as pl

    frame = loaded.frame.filter(pl.col("date") < day)
    if frame.height == 0:
        raise DataError(
            f"{EMPTY_DATASET}: no {loaded.source} rows before {day}.",
            hint=f"The data starts on {loaded.start}; choose a later date.",
        )
    frame = apply_period(frame, settings.period_years)
    frame, short = drop_short_history(frame, min_history, settings.period)
    return _result(frame, loaded.source, {**loaded.dropped, **short})


def select_tickers(
    frame: pl.DataFrame, requested: tuple[str, ...] | None, label: str
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Keep the requested tickers (all when None); absent ones are reported, not fatal."""
    import polars as pl

    if requested is None:
        return frame, {}
    available = set(frame.get_column("ticker").unique().to_list())
    absent = [t for t in requested if t not in available]
    dropped = {t: f"not in the {label} data" for t in absent}
    if absent:
        log.warning(
            "tickers not found in the data source; leaving them out",
            source=label,
            tickers=absent,
            available=sorted(available),
        )
    kept = [t for t in requested if t in available]
    if not kept:
        raise DataError(
            f"None of the tickers asked for ({describe_list(requested)}) is in the {label} data.",
            hint=f"Available tickers: {describe_list(sorted(available), limit=20)}. "
            "Change --tickers (or the tickers list in the config file).",
        )
    return frame.filter(pl.col("ticker").is_in(kept)), dropped


def apply_period(frame: pl.DataFrame, years: int) -> pl.DataFrame:
    """Rows of the last ``years`` years, counted back from the last date in the data."""
    import polars as pl

    if frame.height == 0:
        return frame
    dates = frame.get_column("date")
    cutoff = years_before(dates.max(), years)  # type: ignore[arg-type]
    if dates.min() > cutoff:  # type: ignore[operator]
        return frame  # already inside the window: no copy
    return frame.filter(pl.col("date") > cutoff)


def drop_short_history(
    frame: pl.DataFrame, min_history: int, period: str
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Leave out tickers with fewer than ``min_history`` rows; none left is fatal."""
    import polars as pl

    if min_history <= 0 or frame.height == 0:
        return frame, {}
    counts = frame.group_by("ticker").len()
    short = counts.filter(pl.col("len") < min_history).sort("ticker")
    if short.height == 0:
        return frame, {}
    dropped = {
        t: f"too little history: {n} rows in the {period} window, need {min_history}"
        for t, n in short.iter_rows()
    }
    for ticker, reason in dropped.items():
        log.warning("leaving out ticker with too little history", ticker=ticker, reason=reason)
    if short.height == counts.height:
        most = int(counts.get_column("len").max())  # type: ignore[arg-type]
        raise DataError(
            f"{INSUFFICIENT_DATA}: no ticker has the {min_history} rows the indicators and "
            f"the horizon need in the {period} window (the longest has {most}).",
            hint="Use a longer period (e.g. --period 5y), tickers with longer histories, or "
            "a shorter --horizon.",
        )
    return frame.filter(~pl.col("ticker").is_in(list(dropped))), dropped


def _result(frame: pl.DataFrame, label: str, dropped: dict[str, str]) -> LoadedData:
    from marketpredictor_train.data.schema import tickers_in

    if frame.height == 0:
        raise DataError(
            f"{EMPTY_DATASET}: no rows left from the {label} data.",
            hint="Check --tickers and --period.",
        )
    dates = frame.get_column("date")
    loaded = LoadedData(
        frame=frame,
        source=label,
        tickers=tuple(tickers_in(frame)),
        dropped=dropped,
        start=dates.min(),  # type: ignore[arg-type]
        end=dates.max(),  # type: ignore[arg-type]
    )
    log.info(
        "market data loaded",
        source=label,
        tickers=len(loaded.tickers),
        rows=loaded.rows,
        start=str(loaded.start),
        end=str(loaded.end),
        dropped=len(dropped),
    )
    return loaded
