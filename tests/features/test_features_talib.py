"""Every native indicator equals TA-Lib's on the real sample prices (AAPL, GOOG, IBM, MSFT
2000-2013) to 1e-6 relative, for several parameter choices, and is null exactly where
TA-Lib has no value yet (its lookback), never 0 or carried forward."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
import talib

from marketpredictor_train.features import FeatureSpec, Indicator, build_features

RSI = (2, 9, 14, 30)
MACD = ((12, 26, 9), (5, 35, 5), (8, 17, 9), (3, 10, 16))
STOCH = ((14, 3, 3), (5, 3, 3), (21, 5, 4), (9, 1, 1))
ROC = (1, 10, 21)
ATR = (1, 7, 14, 28)
BBANDS = ((20, 2.0), (10, 1.5), (50, 2.5))
STDDEV = (5, 20, 63)
ADX = (2, 7, 14, 28)
SMA = (2, 10, 50, 200)
EMA = (2, 12, 50, 200)
VOLUME_SMA = (5, 20)


def _spec() -> FeatureSpec:
    make = Indicator.create
    return FeatureSpec.of(
        *(make("rsi", length=n) for n in RSI),
        *(make("macd", fast=f, slow=s, signal=g) for f, s, g in MACD),
        *(make("stoch", k=k, smooth_k=sk, d=d) for k, sk, d in STOCH),
        *(make("roc", length=n) for n in ROC),
        *(make("atr", length=n) for n in ATR),
        *(make("bbands", length=n, mult=m) for n, m in BBANDS),
        *(make("stddev", length=n) for n in STDDEV),
        make("obv", length=20),
        *(make("adx", length=n) for n in ADX),
        *(make("sma", length=n) for n in SMA),
        *(make("ema", length=n) for n in EMA),
        *(make("volume_sma", length=n) for n in VOLUME_SMA),
    )


Arrays = dict[str, np.ndarray]


def _cases() -> list[tuple[str, Callable[[Arrays], np.ndarray]]]:
    cases: list[tuple[str, Callable[[Arrays], np.ndarray]]] = []

    def add(name: str, fn: Callable[[Arrays], np.ndarray]) -> None:
        cases.append((name, fn))

    for n in RSI:
        add(f"rsi_{n}", lambda a, n=n: talib.RSI(a["close"], n))
    for f, s, g in MACD:
        for i, out in enumerate(("macd", "macd_signal", "macd_hist")):
            add(
                f"{out}_{f}_{s}_{g}",
                lambda a, f=f, s=s, g=g, i=i: talib.MACD(a["close"], f, s, g)[i],
            )
    for k, sk, d in STOCH:
        for i, out in enumerate(("stoch_k", "stoch_d")):
            add(
                f"{out}_{k}_{sk}_{d}",
                lambda a, k=k, sk=sk, d=d, i=i: talib.STOCH(
                    a["high"], a["low"], a["close"], k, sk, 0, d, 0
                )[i],
            )
    for n in ROC:
        add(f"roc_{n}", lambda a, n=n: talib.ROC(a["close"], n))
    for n in ATR:
        add(f"atr_{n}", lambda a, n=n: talib.ATR(a["high"], a["low"], a["close"], n))
    for n, m in BBANDS:
        for i, out in enumerate(("bb_upper", "bb_middle", "bb_lower")):
            add(
                f"{out}_{n}_{m:g}", lambda a, n=n, m=m, i=i: talib.BBANDS(a["close"], n, m, m, 0)[i]
            )
    for n in STDDEV:
        add(f"std_{n}", lambda a, n=n: talib.STDDEV(a["close"], n, 1.0))
    add("obv", lambda a: talib.OBV(a["close"], a["volume"]))
    for n in ADX:
        add(f"adx_{n}", lambda a, n=n: talib.ADX(a["high"], a["low"], a["close"], n))
        add(f"plus_di_{n}", lambda a, n=n: talib.PLUS_DI(a["high"], a["low"], a["close"], n))
        add(f"minus_di_{n}", lambda a, n=n: talib.MINUS_DI(a["high"], a["low"], a["close"], n))
    for n in SMA:
        add(f"sma_{n}", lambda a, n=n: talib.SMA(a["close"], n))
    for n in EMA:
        add(f"ema_{n}", lambda a, n=n: talib.EMA(a["close"], n))
    for n in VOLUME_SMA:
        add(f"volume_sma_{n}", lambda a, n=n: talib.SMA(a["volume"], n))
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def computed(sample_ohlcv: pl.DataFrame) -> dict[str, tuple[Arrays, pl.DataFrame]]:
    """Per ticker: the input arrays TA-Lib gets and our features for that ticker."""
    features = build_features(sample_ohlcv, _spec())
    out = {}
    for ticker in sample_ohlcv["ticker"].unique().sort():
        rows = sample_ohlcv.filter(pl.col("ticker") == ticker)
        arrays = {c: rows[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}
        out[ticker] = (arrays, features.filter(pl.col("ticker") == ticker))
    return out


def test_every_case_is_a_column_of_the_spec():
    from marketpredictor_train.features import feature_names

    assert {name for name, _ in CASES} <= set(feature_names(_spec()))


@pytest.mark.parametrize(("column", "reference"), CASES, ids=[name for name, _ in CASES])
def test_indicator_equals_talib_after_warmup_and_is_null_before(computed, column, reference):
    for ticker, (arrays, features) in computed.items():
        expected = reference(arrays)
        ours = features[column]
        # null exactly where TA-Lib has no value: the same warm-up, nothing filled
        assert np.array_equal(ours.is_null().to_numpy(), np.isnan(expected)), ticker
        assert ours.is_nan().sum() == 0
        got = ours.to_numpy()
        valid = ~np.isnan(expected)
        assert valid.sum() > len(expected) // 2, ticker
        # 1e-6 relative; values crossing zero (MACD, ROC) compare against the series'
        # scale instead of their own tiny magnitude
        scale = np.maximum(np.abs(expected[valid]), 1e-6 * np.abs(expected[valid]).max())
        error = np.abs(got[valid] - expected[valid]) / scale
        assert error.max() <= 1e-6, f"{ticker}: max relative error {error.max():.3g}"
