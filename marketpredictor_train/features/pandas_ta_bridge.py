"""The pandas-ta escape hatch: any pandas-ta indicator, named in the feature spec, computed
per ticker and added to the native features.

An entry ``{"kind": "pandas_ta", "function": "cmo", "kwargs": {"length": 9},
"model": "as_is"}`` yields the column ``pta_cmo_9``. Before first use each entry is probed
on a fixed synthetic series: its output names and warm-up are read off the result, and it
is refused if values up to a date change when later rows are added (a centred, negatively
shifted or back-filled indicator), so the no-look-ahead guarantee holds for these columns
too; so are unknown functions and parameters, which pandas-ta itself would ignore.
pandas-ta is told not to delegate to TA-Lib (``talib=False`` unless the entry says
otherwise), so the values do not depend on whether TA-Lib happens to be installed.
"""

from __future__ import annotations

import difflib
import inspect
import re
import warnings
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from marketpredictor_train.errors import ConfigError
from marketpredictor_train.features.catalog import Column, dist, rel
from marketpredictor_train.features.spec import PANDAS_TA_KIND, FeatureSpec, Indicator

if TYPE_CHECKING:
    import pandas as pd

PROBE_ROWS = 600
# Cuts inside and after typical warm-ups: a backward fill of the warm-up is caught by the
# short ones, a centred window or negative offset by all.
_PROBE_CUTS = (3, 10, 30, 75, 150, 300, 451)
_FILLING_KWARGS = ("fillna", "fill_method")
_INPUT_COLUMNS = ("open", "high", "low", "close", "volume")


def column_name(pandas_ta_name: str) -> str:
    """``MACDh_12_26_9`` -> ``pta_macdh_12_26_9``."""
    return "pta_" + re.sub(r"[^0-9a-z_.]+", "_", pandas_ta_name.lower()).strip("_")


def _import_pandas_ta() -> Any:
    with warnings.catch_warnings():
        # pandas-ta's deprecation noise under pandas 3, at import time
        warnings.filterwarnings("ignore", module="pandas_ta")
        import pandas_ta

    return pandas_ta


def _call(ind: Indicator, frame: pd.DataFrame) -> pd.DataFrame | None:
    """Run the entry's pandas-ta function on one ticker's pandas frame; None when the
    history is too short for it."""
    import pandas as pd

    _import_pandas_ta()  # registers the DataFrame.ta accessor
    function = ind.param("function")
    kwargs: dict[str, Any] = {"talib": False, **dict(ind.param("kwargs"))}
    try:
        with warnings.catch_warnings():
            # pandas-ta's own deprecation noise, once per call and ticker
            warnings.filterwarnings("ignore", module="pandas_ta")
            result = frame.ta(kind=function, **kwargs)
    except Exception as exc:  # pandas-ta raises anything from TypeError to KeyError
        raise ConfigError(
            f"Feature spec: {ind.label} failed: {type(exc).__name__}: {exc}",
            hint="Check the function's parameters in the pandas-ta documentation.",
        ) from exc
    if isinstance(result, pd.Series):
        result = result.to_frame()
    if result is None or (
        isinstance(result, pd.DataFrame) and set(map(str, result.columns)) <= set(frame.columns)
    ):
        return None  # too short: pandas-ta gives back nothing or its own input
    if not isinstance(result, pd.DataFrame):
        raise ConfigError(
            f"Feature spec: {ind.label} returned {type(result).__name__}, not one value "
            "per row; only such indicators can be used as features.",
        )
    if len(result) != len(frame):
        raise ConfigError(
            f"Feature spec: {ind.label} returned {len(result)} rows for {len(frame)} input "
            "rows; only indicators returning one value per row can be used as features.",
        )
    wanted = ind.param("columns")
    if wanted is not None:
        missing = [c for c in wanted if c not in result.columns]
        if missing:
            raise ConfigError(
                f"Feature spec: {ind.label} has no output column(s) {', '.join(missing)}.",
                hint=f"It returns: {', '.join(map(str, result.columns))}.",
            )
        result = result[list(wanted)]
    return result


def _check_function(ind: Indicator) -> None:
    """An unknown function or parameter would be silently ignored by pandas-ta; refuse it."""
    import pandas as pd

    pandas_ta = _import_pandas_ta()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="pandas_ta")
        known = pd.DataFrame().ta.indicators(as_list=True)
    function = ind.param("function")
    if function not in known:
        close = difflib.get_close_matches(function, known, n=3)
        raise ConfigError(
            f"Feature spec: pandas-ta has no indicator {function!r}.",
            hint=(f"Did you mean {', '.join(close)}? " if close else "")
            + 'List them with: python -c "import pandas as pd, pandas_ta; '
            'print(pd.DataFrame().ta.indicators(as_list=True))"',
        )
    kwargs = dict(ind.param("kwargs"))
    filling = [k for k in _FILLING_KWARGS if k in kwargs]
    if filling:
        raise ConfigError(
            f"Feature spec: {ind.label} sets {', '.join(filling)}; warm-up rows stay null "
            "(a filled value is made up, a back-filled one comes from the future).",
            hint=f"Remove {', '.join(filling)}.",
        )
    params = [
        name
        for name, p in inspect.signature(getattr(pandas_ta, function)).parameters.items()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
        and name not in ("open_", "high", "low", "close", "volume")
    ]
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ConfigError(
            f"Feature spec: pandas-ta {function} has no parameter(s) {', '.join(unknown)}.",
            hint=f"It takes: {', '.join(params)}.",
        )


def _probe_frame(rows: int) -> pd.DataFrame:
    """A fixed, realistic-looking daily series: the same in every process."""
    import pandas as pd

    rng = np.random.default_rng(20240101)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, rows)))
    spread = close * rng.uniform(0.002, 0.03, rows)
    open_ = close * (1.0 + rng.normal(0.0, 0.005, rows))
    high = np.maximum(open_, close) + spread * rng.uniform(0.1, 1.0, rows)
    low = np.minimum(open_, close) - spread * rng.uniform(0.1, 1.0, rows)
    volume = rng.lognormal(14.0, 0.4, rows).round()
    index = pd.bdate_range("2000-01-03", periods=rows, name="date")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def _as_float(result: pd.DataFrame) -> np.ndarray:
    values = np.array(result.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    values[~np.isfinite(values)] = np.nan
    return values


@cache
def _probe(ind: Indicator) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """pandas-ta output names and warm-ups of ``ind``; refuses a look-ahead indicator."""
    _check_function(ind)
    frame = _probe_frame(PROBE_ROWS)
    full = _call(ind, frame)
    if full is None:
        raise ConfigError(
            f"Feature spec: {ind.label} returned nothing on {PROBE_ROWS} rows of history.",
            hint="Use shorter windows.",
        )
    names = tuple(str(c) for c in full.columns)
    values = _as_float(full)
    for cut in _PROBE_CUTS:
        result = _call(ind, frame.iloc[:cut])
        if result is None:
            # Too short for pandas-ta, which then computes nothing even where a longer
            # history has a value (kama(10) refuses 10 rows, yet a longer history has a
            # value on row 9): nothing to compare.
            continue
        prefix = _as_float(result)
        if not np.allclose(prefix, values[:cut], rtol=1e-9, atol=0.0, equal_nan=True):
            raise ConfigError(
                f"Feature spec: {ind.label} looks ahead: its values up to a date "
                "change when later rows are added, so it would leak the future into training.",
                hint="Drop it, or choose parameters that only use past rows (no centering, "
                "no negative offset).",
            )
    warmups = []
    for name, column in zip(names, values.T, strict=True):
        valid = np.flatnonzero(~np.isnan(column))
        if valid.size == 0:
            raise ConfigError(
                f"Feature spec: {ind.label} output {name} is empty on "
                f"{PROBE_ROWS} rows of history.",
                hint="Use shorter windows, or another column of this indicator.",
            )
        warmups.append(int(valid[0]))
    return names, tuple(warmups)


def outputs(ind: Indicator) -> list[Column]:
    """The columns a pandas_ta entry adds (raw values, then their model version)."""
    names, warmups = _probe(ind)
    use = ind.param("model")
    result: list[Column] = []
    for name, warmup in zip(names, warmups, strict=True):
        raw = Column(column_name(name), None, warmup=warmup, model=use == "as_is")
        result.append(raw)
        if use == "dist":
            result.append(dist(raw, guard=True))
        elif use == "rel":
            result.append(rel(raw))
    return result


def compute(frame: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    """The raw pandas-ta columns of ``spec`` for ``frame`` (sorted by ticker, date), row for
    row, each ticker computed on its own history only."""
    entries = [ind for ind in spec.indicators if ind.kind == PANDAS_TA_KIND]
    columns: dict[str, list[np.ndarray]] = {}
    for part in frame.partition_by("ticker", maintain_order=True):
        history = part.select("date", *_INPUT_COLUMNS).to_pandas().set_index("date")
        for ind in entries:
            names, _ = _probe(ind)
            result = _call(ind, history)
            values = (
                np.full((len(history), len(names)), np.nan) if result is None else _as_float(result)
            )
            for name, column in zip(names, values.T, strict=True):
                columns.setdefault(column_name(name), []).append(column)
    return pl.DataFrame(
        {
            name: pl.Series(name, np.concatenate(parts), dtype=pl.Float64, nan_to_null=True)
            for name, parts in columns.items()
        }
    )
