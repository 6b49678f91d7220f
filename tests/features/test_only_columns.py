"""build_features(only=...): just the named feature columns, with the very values of a
full build (the modelling table asks for the model's columns only)."""

from __future__ import annotations

import pytest

from marketpredictor_train.features import build_features, default_spec, model_feature_names
from marketpredictor_train.testing.synthetic import synthetic_ohlcv


def test_only_the_named_columns_come_back_with_the_full_builds_values():
    ohlcv = synthetic_ohlcv(3, 300, seed=5)
    spec = default_spec()
    wanted = model_feature_names(spec)
    full = build_features(ohlcv, spec)
    some = build_features(ohlcv, spec, only=wanted)
    assert some.columns == ["ticker", "date", *wanted]
    assert len(wanted) < len(full.columns) - 2  # the spec has features the model skips
    assert some.equals(full.select(some.columns))


@pytest.mark.parametrize("keep", [["rsi_14"], []])
def test_a_single_column_or_none(keep):
    ohlcv = synthetic_ohlcv(2, 120, seed=6)
    some = build_features(ohlcv, default_spec(), only=keep)
    assert some.columns == ["ticker", "date", *keep]
