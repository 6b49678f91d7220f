"""The feature pipeline: a spec's indicators computed for every ticker in one Polars query.

Per-ticker expressions run with ``.over("ticker")`` on the frame sorted by (ticker, date),
so each value uses only that ticker's rows up to its own date; derived, scale-free columns
then combine columns of the same row. Values that are not finite (a division by a zero
range) become null like warm-up rows, so a model never sees an infinity or a made-up 0.
"""

from __future__ import annotations

import polars as pl

from marketpredictor_train.features import pandas_ta_bridge
from marketpredictor_train.features._input import PRICE_COLUMNS, prepare
from marketpredictor_train.features.catalog import NATIVE, Output
from marketpredictor_train.features.spec import PANDAS_TA_KIND, FeatureSpec, default_spec


def outputs(spec: FeatureSpec | None = None) -> list[Output]:
    """Every feature column of ``spec`` in order. A name always denotes one computation,
    so a column two indicators share (``obv``) is computed once."""
    spec = spec or default_spec()
    seen: set[str] = set()
    result: list[Output] = []
    for ind in spec.indicators:
        if ind.kind == PANDAS_TA_KIND:
            produced = pandas_ta_bridge.outputs(ind)
        else:
            produced = NATIVE[ind.kind](ind)
        for out in produced:
            if out.name not in seen:
                seen.add(out.name)
                result.append(out)
    return result


def feature_names(spec: FeatureSpec | None = None) -> list[str]:
    """Every feature column :func:`build_features` returns for ``spec``, in order."""
    return [out.name for out in outputs(spec)]


def model_feature_names(spec: FeatureSpec | None = None) -> list[str]:
    """The scale-free columns the model trains on: oscillators, changes, ratios to the
    price and normalised distances, comparable across tickers at any price level."""
    return [out.name for out in outputs(spec) if out.model]


def warmup_rows(spec: FeatureSpec | None = None) -> int:
    """Rows each ticker needs before every model feature is non-null."""
    return max((out.warmup for out in outputs(spec) if out.model), default=0)


def _finite(name: str) -> pl.Expr:
    col = pl.col(name)
    return pl.when(col.is_finite()).then(col).alias(name)


def build_features(
    ohlcv: pl.DataFrame | pl.LazyFrame, spec: FeatureSpec | None = None
) -> pl.DataFrame:
    """Compute the features of ``spec`` (default: :func:`default_spec`) for every ticker.

    ``ohlcv`` has columns ``date`` (Date), ``ticker``, ``open``, ``high``, ``low``,
    ``close``, ``volume``, one row per (ticker, date), in any order. Returns ``ticker``,
    ``date`` and the :func:`feature_names` columns (Float64), sorted by (ticker, date). A
    value on a date uses no row after that date; warm-up rows are null.
    """
    spec = spec or default_spec()
    frame = prepare(ohlcv, PRICE_COLUMNS)
    plan = outputs(spec)

    external = [out for out in plan if out.per_ticker and out.expr is None]
    if external:
        frame = frame.hstack(pandas_ta_bridge.compute(frame, spec))

    native = [
        out.expr.over("ticker").alias(out.name)
        for out in plan
        if out.per_ticker and out.expr is not None
    ]
    derived = [out.expr.alias(out.name) for out in plan if not out.per_ticker]
    return (
        frame.lazy()
        .with_columns(native)
        .with_columns(derived)
        .select("ticker", "date", *(_finite(out.name) for out in plan))
        .collect()
    )
