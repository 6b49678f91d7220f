"""Features TA-Lib does not have, checked on the real sample prices against plain NumPy
references written here and against pandas-ta: rolling VWAP, OBV flow, Bollinger %B and
bandwidth, volume ratio, and the scale-free model columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas_ta as ta
import polars as pl
import pytest
import talib
from numpy.lib.stride_tricks import sliding_window_view

from marketpredictor_train.features import (
    FeatureSpec,
    Indicator,
    build_features,
    default_spec,
    model_feature_names,
)

SPEC = FeatureSpec.of(
    *(Indicator.create("vwap", length=n) for n in (1, 5, 20, 60)),
    *(Indicator.create("obv", length=n) for n in (1, 10, 20)),
    *(Indicator.create("bbands", length=n, mult=m) for n, m in ((20, 2.0), (10, 1.5))),
    *(Indicator.create("volume_sma", length=n) for n in (5, 20)),
    Indicator.create("sma", length=20),
    Indicator.create("ema", length=12),
    Indicator.create("atr", length=14),
    Indicator.create("stddev", length=20),
    Indicator.create("macd"),
)


def _window_sum(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    out[n - 1 :] = sliding_window_view(x, n).sum(axis=1)
    return out


def _assert_close(
    got: pl.Series, expected: np.ndarray, rtol: float = 1e-9, atol: float = 1e-12
) -> None:
    assert np.array_equal(got.is_null().to_numpy(), np.isnan(expected))
    valid = ~np.isnan(expected)
    np.testing.assert_allclose(got.to_numpy()[valid], expected[valid], rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def per_ticker(sample_ohlcv):
    features = build_features(sample_ohlcv, SPEC)
    return [
        (
            {c: part[c].to_numpy() for c in ("high", "low", "close", "volume")},
            features.filter(pl.col("ticker") == part["ticker"][0]),
        )
        for part in sample_ohlcv.partition_by("ticker", maintain_order=True)
    ]


@pytest.mark.parametrize("n", [1, 5, 20, 60])
def test_rolling_vwap_is_the_window_volume_weighted_typical_price(per_ticker, n):
    for a, f in per_ticker:
        typical = (a["high"] + a["low"] + a["close"]) / 3.0
        expected = _window_sum(typical * a["volume"], n) / _window_sum(a["volume"], n)
        _assert_close(f[f"vwap_{n}"], expected)
        _assert_close(f[f"vwap_{n}_dist"], a["close"] / expected - 1.0)


@pytest.mark.parametrize("n", [1, 10, 20])
def test_obv_flow_is_the_obv_change_over_the_window_volume(per_ticker, n):
    for a, f in per_ticker:
        obv = talib.OBV(a["close"], a["volume"])
        expected = np.full(len(obv), np.nan)
        expected[n:] = (obv[n:] - obv[:-n]) / _window_sum(a["volume"], n)[n:]
        _assert_close(f[f"obv_flow_{n}"], expected)
        assert f[f"obv_flow_{n}"].abs().max() <= 1.0


@pytest.mark.parametrize(("n", "m"), [(20, 2.0), (10, 1.5)])
def test_bollinger_percent_b_and_bandwidth_match_pandas_ta(per_ticker, n, m):
    for a, f in per_ticker:
        close = pd.Series(a["close"])
        bands = ta.bbands(close, n, m, m, ddof=0, talib=False)
        percent_b = bands.filter(like="BBP").iloc[:, 0].to_numpy()
        bandwidth = bands.filter(like="BBB").iloc[:, 0].to_numpy() / 100.0  # pandas-ta: %
        # pandas-ta's rolling std differs in the last digits; %B is in units of the band
        # width, so a close right on the lower band compares absolutely
        _assert_close(f[f"bb_pctb_{n}_{m:g}"], percent_b, rtol=1e-7, atol=1e-9)
        _assert_close(f[f"bb_width_{n}_{m:g}"], bandwidth, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("n", [5, 20])
def test_volume_ratio_is_todays_volume_over_its_sma(per_ticker, n):
    for a, f in per_ticker:
        expected = a["volume"] / (_window_sum(a["volume"], n) / n)
        _assert_close(f[f"volume_ratio_{n}"], expected)


def test_rel_and_dist_columns_are_ratios_to_the_close(per_ticker):
    for a, f in per_ticker:
        close = a["close"]
        for raw in ("atr_14", "std_20", "macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9"):
            _assert_close(f[f"{raw}_rel"], f[raw].to_numpy() / close)
        for raw in ("sma_20", "ema_12", "vwap_20"):
            _assert_close(f[f"{raw}_dist"], close / f[raw].to_numpy() - 1.0)


def test_undefined_ratios_are_null_not_infinite():
    """A ticker that stops trading (volume 0, flat price) has no volume ratio, VWAP or %B:
    they are null, never inf or NaN."""
    days = 60
    flat = pl.DataFrame(
        {
            "ticker": ["HALT"] * days,
            "date": pl.date_range(pl.date(2020, 1, 1), pl.date(2020, 2, 29), eager=True)[:days],
            "open": [10.0] * days,
            "high": [10.0] * days,
            "low": [10.0] * days,
            "close": [10.0] * days,
            "volume": [0.0] * days,
        }
    )
    features = build_features(flat, default_spec())
    for name in features.columns[2:]:
        values = features[name]
        assert values.is_nan().sum() == 0 and values.is_infinite().sum() == 0, name
    assert features["volume_ratio_20"].null_count() == days
    assert features["vwap_20"].null_count() == days
    assert features["bb_pctb_20_2"].null_count() == days
    # a flat market is a well-defined 0 for the oscillators TA-Lib defines there
    assert features["rsi_14"].drop_nulls().unique().to_list() == [0.0]


def test_model_features_are_all_scale_free_columns():
    names = model_feature_names(default_spec())
    assert all(
        n.endswith(("_rel", "_dist"))
        or n.startswith(("rsi_", "stoch_", "roc_", "bb_pctb_", "bb_width_", "obv_flow_"))
        or n.startswith(("volume_ratio_", "adx_", "plus_di_", "minus_di_"))
        for n in names
    ), names
