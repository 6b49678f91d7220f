"""Technical features and labels for the direction model, computed with Polars per ticker
without look-ahead; see :func:`build_features` and :class:`FeatureSpec`."""

from __future__ import annotations

from marketpredictor_train.features._input import (
    PRICE_COLUMNS,
    ordered_by_ticker_date,
    prepare_prices,
)
from marketpredictor_train.features.labels import make_labels
from marketpredictor_train.features.pipeline import (
    build_features,
    feature_names,
    model_feature_names,
    warmup_rows,
)
from marketpredictor_train.features.spec import (
    FeatureSpec,
    Indicator,
    check_spec,
    default_spec,
)

__all__ = [
    "PRICE_COLUMNS",
    "FeatureSpec",
    "Indicator",
    "build_features",
    "check_spec",
    "default_spec",
    "feature_names",
    "make_labels",
    "model_feature_names",
    "ordered_by_ticker_date",
    "prepare_prices",
    "warmup_rows",
]
