"""The modelling table is built a group of tickers at a time, and the purge guard and the
trading view's price context work row-wise on sorted prices: each must give exactly what
the whole-frame, per-ticker computation gives, on prices in any order, with missing
days and a ticker that stops trading early."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from marketpredictor_train.dataset import (
    chronological_split,
    cut_dataset,
    labelled_features,
    table,
)
from marketpredictor_train.dataset.guards import purge_reaching
from marketpredictor_train.features import default_spec
from marketpredictor_train.testing.synthetic import synthetic_ohlcv
from marketpredictor_train.validation.backtest import price_context


def _awkward_market() -> pl.DataFrame:
    """Seven tickers: one missing a run of days near the split, one missing scattered
    days, one that stops trading months before the end; rows shuffled."""
    frame = synthetic_ohlcv(7, 420, seed=5)
    tickers = sorted(frame.get_column("ticker").unique().to_list())
    dates = frame.get_column("date").unique().sort().to_list()
    # the run of missing days straddles the split of a 3-month backtest (purge gap 1..5)
    window = chronological_split(frame.get_column("date"), backtest_months=3, purge_gap=1)
    split = dates.index(window.backtest_start)
    gap = dates[split - 8 : split + 4]
    rng = np.random.default_rng(0)
    scattered = [dates[i] for i in rng.choice(len(dates), 25, replace=False)]
    frame = frame.filter(
        ~((pl.col("ticker") == tickers[1]) & pl.col("date").is_in(gap))
        & ~((pl.col("ticker") == tickers[2]) & pl.col("date").is_in(scattered))
        & ~((pl.col("ticker") == tickers[3]) & (pl.col("date") > dates[330]))
    )
    return frame.sample(fraction=1.0, shuffle=True, seed=1)


@pytest.fixture
def one_piece(monkeypatch):
    def build(fn, *args, **kwargs):
        monkeypatch.setattr(table, "TABLE_PIECE_ROWS", 10**9)
        whole = fn(*args, **kwargs)
        monkeypatch.setattr(table, "TABLE_PIECE_ROWS", 500)  # one or two tickers a piece
        return whole, fn(*args, **kwargs)

    return build


def test_the_table_built_in_pieces_is_the_table_built_whole(one_piece):
    whole, pieces = one_piece(labelled_features, _awkward_market(), default_spec(), horizon=2)
    assert pieces.height > 2_000
    assert pieces.equals(whole)
    keys = pieces.select("ticker", "date")
    assert keys.equals(keys.sort("ticker", "date"))


def test_the_cut_in_pieces_is_the_cut_of_the_whole_table(one_piece):
    frame = _awkward_market()
    tickers = sorted(frame.get_column("ticker").unique().to_list())
    membership = pl.DataFrame(
        {
            "ticker": tickers,
            "start": [frame.get_column("date").min()] * len(tickers),
            "end": [None, frame.get_column("date").max(), *[None] * (len(tickers) - 2)],
        }
    ).with_columns(pl.col("end").cast(pl.Date))
    args = dict(horizon=1, dead_band=0.002, backtest_months=3, purge_gap=1, membership=membership)
    whole, pieces = one_piece(cut_dataset, frame, default_spec(), **args)
    assert pieces.train.equals(whole.train)
    assert pieces.backtest.equals(whole.backtest)
    assert pieces.window == whole.window


def test_float32_training_features_beside_a_float64_backtest():
    frame = _awkward_market()
    args = dict(horizon=1, dead_band=0.0, backtest_months=3, purge_gap=1)
    wide = cut_dataset(frame, default_spec(), **args)
    narrow = cut_dataset(frame, default_spec(), **args, train_dtype="float32")
    columns = wide.feature_columns
    assert all(narrow.train.schema[c] == pl.Float32 for c in columns)
    assert all(narrow.backtest.schema[c] == pl.Float64 for c in columns)
    assert narrow.backtest.equals(wide.backtest)
    x32, y32 = narrow.xy(narrow.train, "float32")
    x64, y64 = wide.xy(wide.train, "float64")
    np.testing.assert_array_equal(x32, x64.astype(np.float32))
    np.testing.assert_array_equal(y32, y64)


@pytest.mark.parametrize("piece_rows", [10**9, 500])
@pytest.mark.parametrize("horizon", [1, 5])
def test_the_purge_drops_exactly_the_rows_whose_label_reaches_the_backtest(
    horizon, piece_rows, monkeypatch
):
    monkeypatch.setattr(table, "TABLE_PIECE_ROWS", piece_rows)
    frame = _awkward_market()
    dataset = cut_dataset(
        frame, default_spec(), horizon=horizon, dead_band=0.0, backtest_months=3, purge_gap=horizon
    )
    start = dataset.window.backtest_start
    # the definition, per ticker: the row `horizon` of the ticker's own rows later
    label_end = frame.sort("ticker", "date").with_columns(
        pl.col("date").shift(-horizon).over("ticker").alias("label_end")
    )
    unpurged = labelled_features(frame, default_spec(), horizon=horizon).filter(
        pl.col("date") <= dataset.window.train_end
    )
    expected = (
        unpurged.join(label_end.select("ticker", "date", "label_end"), on=["ticker", "date"])
        .filter(pl.col("label_end").is_not_null() & (pl.col("label_end") < start))
        .drop("label_end")
    )
    assert expected.height < unpurged.height  # the gappy ticker leaks
    assert dataset.train.equals(expected.select(dataset.train.columns))
    assert "forward_return" not in dataset.train.columns
    assert "forward_return" in dataset.backtest.columns


def test_a_purge_with_nothing_reaching_keeps_the_training_rows_as_they_are():
    frame = synthetic_ohlcv(3, 300, seed=1).sort("ticker", "date")
    window = chronological_split(frame.get_column("date"), backtest_months=3, purge_gap=1)
    train = labelled_features(frame, default_spec(), horizon=1).filter(
        pl.col("date") <= window.train_end
    )
    assert purge_reaching(train, frame, 1, window.backtest_start) is train


@pytest.mark.parametrize("horizon", [1, 3])
def test_price_context_is_each_ticker_s_own_next_and_past_return(horizon):
    frame = _awkward_market()
    keys = frame.select("ticker", "date").sort("ticker", "date")
    edges = pl.concat(
        [keys.group_by("ticker").head(horizon + 1), keys.group_by("ticker").tail(1)]
    )  # where a shift would cross into the neighbouring ticker
    rows = pl.concat([keys.sample(n=600, seed=2), edges]).unique(maintain_order=True)
    rows = rows.sample(fraction=1.0, shuffle=True, seed=3)
    close = pl.col("close")
    expected = (
        frame.sort("ticker", "date")
        .with_columns(
            (close.shift(-1).over("ticker") / close - 1.0).alias("next_return"),
            (close / close.shift(horizon).over("ticker") - 1.0).alias("past_return"),
        )
        .select("ticker", "date", "next_return", "past_return")
    )
    want = rows.join(expected, on=["ticker", "date"], how="left", maintain_order="left")
    got = price_context(frame, rows, horizon)
    assert got.select("ticker", "date").equals(rows)
    assert got.get_column("past_return").null_count() == want.get_column("past_return").null_count()
    for name in ("next_return", "past_return"):
        np.testing.assert_allclose(
            got.get_column(name).to_numpy(), want.get_column(name).to_numpy(), rtol=0, atol=0
        )


def test_price_context_of_no_rows_is_empty_and_quiet(recwarn):
    frame = _awkward_market()
    got = price_context(frame, frame.select("ticker", "date").clear(), 1)
    assert got.height == 0
    assert got.columns == ["ticker", "date", "next_return", "past_return"]
    assert not [w for w in recwarn if "polars" in str(w.filename) or "None" in str(w.message)]
