"""The public contract of marketpredictor_train.features that the data layer, the training
API and the model store code against."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest

from marketpredictor_train.errors import ConfigError, DataError
from marketpredictor_train.features import (
    FeatureSpec,
    Indicator,
    build_features,
    check_spec,
    default_spec,
    feature_names,
    make_labels,
    model_feature_names,
    warmup_rows,
)


def test_build_features_returns_keyed_float_columns_sorted_by_ticker_and_date(small_ohlcv):
    shuffled = small_ohlcv.sample(fraction=1.0, shuffle=True, seed=1)
    features = build_features(shuffled)
    assert features.columns == ["ticker", "date", *feature_names(default_spec())]
    assert features.height == small_ohlcv.height
    assert all(features.schema[c] == pl.Float64 for c in feature_names(default_spec()))
    assert features.select("ticker", "date").equals(
        small_ohlcv.select("ticker", "date").sort("ticker", "date")
    )


def test_build_features_accepts_a_lazy_frame_and_a_spec(small_ohlcv):
    spec = FeatureSpec.of(Indicator.create("rsi", length=5), Indicator.create("sma", length=3))
    features = build_features(small_ohlcv.lazy(), spec)
    assert features.columns == ["ticker", "date", "rsi_5", "sma_3", "sma_3_dist"]


def test_model_features_are_the_scale_free_subset_of_the_default_set():
    spec = default_spec()
    names = feature_names(spec)
    model = model_feature_names(spec)
    assert set(model) < set(names)
    assert len(model) >= 20
    # price-level columns stay available but never reach the model
    for raw in ("sma_20", "ema_12", "atr_14", "obv", "vwap_20", "bb_upper_20_2", "macd_12_26_9"):
        assert raw in names
        assert raw not in model


def test_model_features_do_not_change_when_every_price_is_scaled(small_ohlcv):
    """Scale-free means a ticker at 10x the price (or a 1:10 split history) looks the same."""
    model = model_feature_names(default_spec())
    base = build_features(small_ohlcv).select(model)
    scaled = small_ohlcv.with_columns(
        pl.col("open", "high", "low", "close") * 10.0, pl.col("volume") * 3.0
    )
    other = build_features(scaled).select(model)
    for name in model:
        a, b = base[name], other[name]
        assert a.is_null().equals(b.is_null()), name
        assert ((a - b).abs() <= 1e-9 * (1.0 + a.abs())).fill_null(True).all(), name


def test_warmup_rows_is_the_row_from_which_every_model_feature_is_set(small_ohlcv):
    spec = default_spec()
    warm = warmup_rows(spec)
    features = build_features(small_ohlcv, spec).with_columns(
        pl.int_range(pl.len()).over("ticker").alias("row")
    )
    model = model_feature_names(spec)
    after = features.filter(pl.col("row") >= warm).select(model)
    assert after.null_count().sum_horizontal().item() == 0
    # and on the row before it, at least one model feature is still warming up
    before = features.filter(pl.col("row") == warm - 1).select(model)
    assert before.null_count().sum_horizontal().item() > 0


def test_spec_round_trips_through_json_and_keeps_its_hash():
    spec = default_spec()
    again = FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert again.hash == spec.hash
    assert len(spec.hash) == 64 and int(spec.hash, 16) >= 0


@pytest.mark.slow
def test_spec_hash_is_stable_across_processes():
    code = "from marketpredictor_train.features import default_spec; print(default_spec().hash)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == default_spec().hash


def test_defaults_are_filled_in_so_equal_specs_hash_equal():
    short = FeatureSpec.from_dict({"indicators": [{"kind": "bbands"}]})
    full = FeatureSpec.of(Indicator.create("bbands", length=20, mult=2))
    assert short.hash == full.hash
    assert short.to_dict()["indicators"] == [{"kind": "bbands", "length": 20, "mult": 2.0}]


def test_any_parameter_change_changes_the_hash_and_the_column_names():
    a = FeatureSpec.of(Indicator.create("rsi", length=14))
    b = FeatureSpec.of(Indicator.create("rsi", length=9))
    assert a.hash != b.hash
    assert feature_names(a) == ["rsi_14"] and feature_names(b) == ["rsi_9"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"indicators": [{"kind": "rsx"}]}, "unknown indicator kind 'rsx'"),
        ({"indicators": [{"kind": "rsi", "lenght": 3}]}, "no parameter(s) lenght"),
        ({"indicators": [{"kind": "rsi", "length": 1}]}, "rsi.length must be >= 2"),
        ({"indicators": [{"kind": "sma", "length": 2.5}]}, "must be a whole number"),
        ({"indicators": [{"kind": "macd", "fast": 30, "slow": 26}]}, "must be shorter"),
        ({"indicators": []}, "no indicators"),
        ({"indicators": "rsi"}, "must be a list"),
        ({"schema": "mptrain.features/0", "indicators": []}, "not supported"),
        ({"indicators": [{"kind": "rsi"}, {"kind": "rsi", "length": 14}]}, "listed twice"),
        (["rsi"], "must be a mapping"),
    ],
)
def test_from_dict_rejects_bad_specs_with_a_clear_config_error(data, message):
    with pytest.raises(ConfigError) as info:
        FeatureSpec.from_dict(data)
    assert message in str(info.value)
    assert info.value.exit_code == 3


def test_check_spec_refuses_a_different_spec_naming_both_hashes():
    trained = default_spec()
    other = FeatureSpec.of(Indicator.create("rsi", length=9))
    check_spec(trained.hash, FeatureSpec.from_dict(trained.to_dict()))
    with pytest.raises(ConfigError) as info:
        check_spec(trained.hash, other)
    text = str(info.value)
    assert trained.hash in text and other.hash in text
    assert "retrain" in text


def test_bad_ohlcv_is_a_data_error_naming_the_ticker_and_date(small_ohlcv):
    with pytest.raises(DataError, match="missing column"):
        build_features(small_ohlcv.drop("volume"))
    holed = small_ohlcv.with_columns(
        pl.when((pl.col("ticker") == "T001") & (pl.int_range(pl.len()) % 300 == 40))
        .then(None)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    with pytest.raises(DataError, match=r"T001 \(1 rows from 2000-02-2"):
        build_features(holed)
    with pytest.raises(DataError, match="T002 2000-01-03"):
        build_features(pl.concat([small_ohlcv, small_ohlcv.filter(pl.col("ticker") == "T002")]))


def test_labels_are_the_forward_return_and_its_direction(small_ohlcv):
    labels = make_labels(small_ohlcv.reverse(), horizon=3)
    assert labels.schema == pl.Schema(
        {"ticker": pl.String, "date": pl.Date, "forward_return": pl.Float64, "label": pl.Int8}
    )
    one = small_ohlcv.filter(pl.col("ticker") == "T000")["close"].to_list()
    got = labels.filter(pl.col("ticker") == "T000")
    expected = [one[i + 3] / one[i] - 1.0 for i in range(len(one) - 3)]
    assert got["forward_return"].head(len(expected)).to_list() == pytest.approx(expected, rel=1e-12)
    # the last horizon rows of every ticker have neither a return nor a label
    tail = labels.group_by("ticker").tail(3)
    assert tail["forward_return"].null_count() == tail.height == tail["label"].null_count()
    up = got.filter(pl.col("forward_return") > 0)["label"].unique().to_list()
    down = got.filter(pl.col("forward_return") < 0)["label"].unique().to_list()
    assert up == [1] and down == [0]


def test_labels_inside_the_dead_band_are_null(small_ohlcv):
    labels = make_labels(small_ohlcv, horizon=1, dead_band=0.01)
    inside = labels.filter(pl.col("forward_return").abs() <= 0.01)
    outside = labels.filter(pl.col("forward_return").abs() > 0.01)
    assert inside.height > 0 and inside["label"].null_count() == inside.height
    assert outside["label"].null_count() == 0


@pytest.mark.parametrize(("horizon", "dead_band"), [(0, 0.0), (1.5, 0.0), (1, -0.1), (1, 1.0)])
def test_labels_reject_a_bad_horizon_or_dead_band(small_ohlcv, horizon, dead_band):
    with pytest.raises(ConfigError):
        make_labels(small_ohlcv, horizon=horizon, dead_band=dead_band)


def test_non_positive_prices_are_a_data_error_naming_the_row(small_ohlcv):
    broken = small_ohlcv.with_columns(
        pl.when((pl.col("ticker") == "T002") & (pl.int_range(pl.len()) % 300 == 5))
        .then(0.0)
        .otherwise(pl.col("low"))
        .alias("low")
    )
    with pytest.raises(DataError, match=r"price <= 0 .*T002 2000-01-10"):
        build_features(broken)


def test_an_empty_frame_gives_an_empty_frame_with_every_column(small_ohlcv):
    features = build_features(small_ohlcv.head(0))
    assert features.height == 0
    assert features.columns == ["ticker", "date", *feature_names(default_spec())]


def test_a_ticker_shorter_than_the_warmup_gets_null_features_not_an_error(small_ohlcv):
    from marketpredictor_train.features.pipeline import outputs

    short = pl.concat(
        [
            small_ohlcv.filter(pl.col("ticker") == "T000").head(5),
            small_ohlcv.filter(pl.col("ticker") != "T000"),
        ]
    )
    features = build_features(short).filter(pl.col("ticker") == "T000")
    assert features.height == 5
    for column in outputs(default_spec()):
        assert features[column.name].null_count() == min(column.warmup, 5), column.name
