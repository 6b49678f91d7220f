"""The training matrix of a Dataset: float32 on request, C order, and the dataset without
its training features once the matrix is built."""

from __future__ import annotations

import numpy as np
import polars as pl

from marketpredictor_train.dataset import build_dataset
from marketpredictor_train.features import default_spec
from marketpredictor_train.testing.synthetic import synthetic_ohlcv


def _dataset(tickers=3, days=400, seed=2, **options):
    return build_dataset(
        synthetic_ohlcv(tickers, days, seed=seed),
        default_spec(),
        horizon=1,
        dead_band=0.0,
        backtest_months=3,
        purge_gap=1,
        **options,
    )


def test_float32_matrix_is_the_float64_one_rounded_and_c_ordered():
    dataset = _dataset()
    x64, y64 = dataset.xy(dataset.train)
    x32, y32 = dataset.xy(dataset.train, "float32")
    assert x64.dtype == np.float64 and x32.dtype == np.float32
    assert x32.flags["C_CONTIGUOUS"] and x64.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(x32, x64.astype(np.float32))
    np.testing.assert_array_equal(y32, y64)


def test_without_train_features_keeps_dates_labels_and_the_backtest():
    dataset = _dataset()
    slim = dataset.without_train_features()
    assert slim.train.columns == ["date", "label"]
    assert slim.train.height == dataset.train.height
    assert slim.backtest.equals(dataset.backtest)
    assert slim.train.get_column("label").equals(dataset.train.get_column("label"))
    assert slim.train.get_column("date").equals(dataset.train.get_column("date"))
    assert isinstance(slim.train, pl.DataFrame)
