"""The training rows read a batch at a time from the feature table (FrameBatches): the
batches of every row, or of chosen rows, hold exactly the matrix Dataset.xy makes of
them, across the table's chunks and with a ragged last batch."""

from __future__ import annotations

import numpy as np
import pytest

from marketpredictor_train.dataset import table
from marketpredictor_train.dataset.table import FrameBatches
from marketpredictor_train.models.base import ArrayBatches
from tests.dataset.test_table_matrix import _dataset


@pytest.fixture
def dataset(monkeypatch):
    monkeypatch.setattr(table, "TABLE_PIECE_ROWS", 700)  # a table of several chunks
    return _dataset(6, 500, seed=3, train_dtype="float32")


def _joined(batches):
    parts = list(batches)
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_batches_of_every_row_are_the_matrix(dataset, monkeypatch, dtype):
    monkeypatch.setattr(table, "BATCH_ROWS", 333)  # batches that cross the chunks
    assert dataset.train.n_chunks() > 1
    batches = dataset.batches(dataset.train, dtype)
    sizes = [len(y) for _, y in batches]
    assert len(sizes) > 3 and max(sizes) == 333 and sizes[-1] <= 333
    x, y = _joined(batches)
    want_x, want_y = dataset.xy(dataset.train, dtype)
    assert x.dtype == want_x.dtype and all(b.flags["C_CONTIGUOUS"] for b, _ in batches)
    np.testing.assert_array_equal(x, want_x)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(batches.labels, want_y)
    np.testing.assert_array_equal(batches.matrix(), want_x)
    # read again, the same (a library may read them as often as it wants)
    np.testing.assert_array_equal(_joined(batches)[0], want_x)


def test_the_batches_of_chosen_rows_are_those_rows_of_the_matrix(dataset, monkeypatch):
    monkeypatch.setattr(table, "BATCH_ROWS", 250)
    rng = np.random.default_rng(1)
    chosen = np.flatnonzero(rng.random(dataset.train.height) < 0.7)
    batches = dataset.batches(dataset.train, "float32", chosen)
    want_x, want_y = dataset.xy(dataset.train, "float32")
    x, y = _joined(batches)
    np.testing.assert_array_equal(x, want_x[chosen])
    np.testing.assert_array_equal(y, want_y[chosen])
    assert len(batches) == chosen.size
    empty = dataset.batches(dataset.train, "float32", chosen[:0])
    assert list(empty) == [] and empty.matrix().shape == (0, len(dataset.feature_columns))


def test_rows_out_of_order_are_refused(dataset):
    with pytest.raises(ValueError, match="ascending"):
        FrameBatches(dataset.train, dataset.feature_columns, rows=np.array([5, 3, 9]))


def test_array_batches_cut_arrays_in_order():
    x = np.arange(20.0).reshape(10, 2)
    y = np.arange(10) % 2
    parts = list(ArrayBatches(x, y, size=4))
    assert [len(b) for b, _ in parts] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b for b, _ in parts]), x)
    assert ArrayBatches(x, y).labels is y
