"""The pandas-ta escape hatch: a spec entry naming any pandas-ta indicator is computed per
ticker on that ticker's history, named deterministically, and refused when it would look
ahead or cannot give one value per row."""

from __future__ import annotations

import numpy as np
import pandas_ta as ta
import polars as pl
import pytest

from marketpredictor_train.errors import ConfigError
from marketpredictor_train.features import (
    FeatureSpec,
    Indicator,
    build_features,
    feature_names,
    model_feature_names,
    warmup_rows,
)

CMO = Indicator("pandas_ta", {"function": "cmo", "kwargs": {"length": 9}, "model": "as_is"})
KAMA = Indicator("pandas_ta", {"function": "kama", "kwargs": {"length": 10}, "model": "dist"})
KC = Indicator(
    "pandas_ta",
    {"function": "kc", "kwargs": {"length": 20}, "model": "rel", "columns": ["KCUe_20_2"]},
)
SPEC = FeatureSpec.of(Indicator.create("rsi"), CMO, KAMA, KC)


@pytest.fixture(scope="module")
def features(sample_ohlcv):
    return build_features(sample_ohlcv, SPEC)


def test_columns_are_named_from_pandas_ta_outputs_and_the_model_use():
    assert feature_names(SPEC) == [
        "rsi_14",
        "pta_cmo_9",
        "pta_kama_10_2_30",
        "pta_kama_10_2_30_dist",
        "pta_kcue_20_2",
        "pta_kcue_20_2_rel",
    ]
    assert model_feature_names(SPEC) == [
        "rsi_14",
        "pta_cmo_9",
        "pta_kama_10_2_30_dist",
        "pta_kcue_20_2_rel",
    ]
    assert warmup_rows(SPEC) >= 19


def test_values_equal_pandas_ta_run_on_each_ticker_alone(sample_ohlcv, features):
    for part in sample_ohlcv.partition_by("ticker", maintain_order=True):
        ticker = part["ticker"][0]
        history = part.drop("ticker").to_pandas().set_index("date")
        expected = {
            "pta_cmo_9": ta.cmo(history["close"], length=9, talib=False),
            "pta_kama_10_2_30": ta.kama(history["close"], length=10),
            "pta_kcue_20_2": ta.kc(history["high"], history["low"], history["close"], 20)[
                "KCUe_20_2"
            ],
        }
        ours = features.filter(pl.col("ticker") == ticker)
        for name, series in expected.items():
            want = series.to_numpy(dtype=float)
            got = ours[name]
            assert np.array_equal(got.is_null().to_numpy(), np.isnan(want)), (ticker, name)
            valid = ~np.isnan(want)
            np.testing.assert_allclose(got.to_numpy()[valid], want[valid], rtol=1e-12)
        close = part["close"].to_numpy()
        np.testing.assert_allclose(
            ours["pta_kama_10_2_30_dist"].to_numpy(),
            close / ours["pta_kama_10_2_30"].to_numpy() - 1.0,
            rtol=1e-12,
        )


def test_a_ticker_too_short_for_the_indicator_gets_nulls(sample_ohlcv):
    short = sample_ohlcv.filter(
        (pl.col("ticker") != "IBM") | (pl.col("date") < pl.date(2000, 3, 10))
    )
    ibm = build_features(short, SPEC).filter(pl.col("ticker") == "IBM")
    assert 0 < ibm.height < 10
    assert ibm["pta_kama_10_2_30"].null_count() == ibm.height


def test_pandas_ta_columns_do_not_look_ahead(sample_ohlcv, features):
    cut = pl.date(2008, 6, 30)
    truncated = build_features(sample_ohlcv.filter(pl.col("date") <= cut), SPEC)
    assert truncated.equals(features.filter(pl.col("date") <= cut))


def test_a_look_ahead_indicator_is_refused():
    centred = Indicator(
        "pandas_ta", {"function": "dpo", "kwargs": {"centered": True}, "model": "as_is"}
    )
    with pytest.raises(ConfigError, match="looks ahead"):
        feature_names(FeatureSpec.of(centred))
    # the same indicator without centring only uses past rows and is accepted
    trailing = Indicator(
        "pandas_ta", {"function": "dpo", "kwargs": {"centered": False}, "model": "as_is"}
    )
    assert feature_names(FeatureSpec.of(trailing)) == ["pta_dpo_20"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"function": "rsii", "model": "as_is"}, "Did you mean rsi"),
        ({"function": "ichimoku", "model": "as_is"}, "returned tuple"),
        ({"function": "kc", "model": "rel", "columns": ["KCX"]}, "no output column"),
        # pandas-ta would silently ignore the typo and compute cmo(14)
        ({"function": "cmo", "kwargs": {"lenght": 9}, "model": "as_is"}, "no parameter"),
        ({"function": "cmo", "kwargs": {"fillna": 0.0}, "model": "as_is"}, "stay null"),
        ({"function": "cmo", "kwargs": {"length": 900}, "model": "as_is"}, "returned nothing"),
        ({"function": "cmo", "kwargs": {"offset": -1}, "model": "as_is"}, "looks ahead"),
    ],
)
def test_unusable_pandas_ta_entries_are_config_errors(entry, message):
    spec = FeatureSpec.of(Indicator("pandas_ta", entry))
    with pytest.raises(ConfigError, match=message):
        feature_names(spec)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kwargs": {"length": 9}, "model": "as_is"}, "needs 'function'"),
        ({"function": "cmo"}, "needs 'model'"),
        ({"function": "cmo", "model": "scaled"}, "needs 'model'"),
        ({"function": "cmo", "model": "as_is", "kwargs": {"length": [9]}}, "kwargs must map"),
        ({"function": "cmo", "model": "as_is", "length": 9}, "Write the indicator's own"),
    ],
)
def test_malformed_pandas_ta_entries_are_rejected_by_the_spec(entry, message):
    with pytest.raises(ConfigError, match=message):
        FeatureSpec.from_dict({"indicators": [{"kind": "pandas_ta", **entry}]})


def test_pandas_ta_entries_round_trip_and_hash():
    again = FeatureSpec.from_dict(SPEC.to_dict())
    assert again == SPEC and again.hash == SPEC.hash
    assert SPEC.to_dict()["indicators"][1] == {
        "kind": "pandas_ta",
        "function": "cmo",
        "kwargs": {"length": 9},
        "model": "as_is",
        "columns": None,
    }
