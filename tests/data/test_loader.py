"""load_ohlcv over the sample and file sources: the frame contract, tickers, period, history."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from structlog.testing import capture_logs

from marketpredictor_train.config import load_settings
from marketpredictor_train.data import OHLCV_COLUMNS, LoadedData, load_ohlcv
from marketpredictor_train.errors import ConfigError, DataError
from tests.data.fakes import make_ohlcv


def test_sample_default_gives_four_adjusted_tickers_in_the_contract_shape():
    loaded = load_ohlcv(load_settings(source="sample", period="10y"))
    assert isinstance(loaded, LoadedData)
    assert loaded.tickers == ("AAPL", "GOOG", "IBM", "MSFT")
    assert tuple(loaded.frame.columns) == OHLCV_COLUMNS
    assert loaded.frame.schema["date"] == pl.Date
    assert loaded.frame.schema["ticker"] == pl.String
    assert all(loaded.frame.schema[c] == pl.Float64 for c in OHLCV_COLUMNS[2:])
    assert loaded.end == dt.date(2013, 3, 1)
    assert loaded.frame.equals(loaded.frame.sort("ticker", "date"))


def test_sample_has_no_split_jump_at_aapl_2005_split():
    """The raw file halves AAPL on 2005-02-28; adjusted, the day moves like any other."""
    frame = load_ohlcv(load_settings(source="sample", period="10y", tickers="AAPL")).frame
    window = frame.filter(pl.col("date").is_between(pl.date(2005, 2, 25), pl.date(2005, 2, 28)))
    before, after = window.get_column("close").to_list()
    assert abs(after / before - 1) < 0.05
    volume_before, volume_after = window.get_column("volume").to_list()
    assert 0.2 < volume_after / volume_before < 5


def test_period_counts_back_from_the_last_date_in_the_data():
    loaded = load_ohlcv(load_settings(source="sample", period="1y"))
    assert loaded.end == dt.date(2013, 3, 1)
    assert loaded.start > dt.date(2012, 3, 1)
    assert loaded.start < dt.date(2012, 3, 10)


def test_tickers_absent_from_source_are_reported_and_left_out():
    with capture_logs() as logs:
        loaded = load_ohlcv(load_settings(source="sample", tickers="AAPL,NOPE"))
    assert loaded.tickers == ("AAPL",)
    assert "NOPE" in loaded.dropped
    assert any(e["log_level"] == "warning" and e["tickers"] == ["NOPE"] for e in logs)


def test_no_requested_ticker_present_is_a_data_error():
    with pytest.raises(DataError, match="NOPE"):
        load_ohlcv(load_settings(source="sample", tickers="NOPE"))


def test_short_history_ticker_left_out_with_warning(write_csv):
    frame = pl.concat([make_ohlcv(("LONG",), days=80), make_ohlcv(("SHORT",), days=20)])
    path = write_csv(frame)
    with capture_logs() as logs:
        loaded = load_ohlcv(load_settings(source=str(path)), min_history=50)
    assert loaded.tickers == ("LONG",)
    assert "too little history" in loaded.dropped["SHORT"]
    assert any(e.get("ticker") == "SHORT" and e["log_level"] == "warning" for e in logs)


def test_only_ticker_too_short_is_insufficient_data(write_csv):
    path = write_csv(make_ohlcv(("SHORT",), days=20))
    with pytest.raises(DataError, match="Training failed - insufficient data"):
        load_ohlcv(load_settings(source=str(path)), min_history=50)


def test_missing_source_path_is_a_config_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(ConfigError, match="nowhere.csv") as info:
        load_ohlcv(load_settings(source=str(missing)))
    assert info.value.exit_code == 3


def test_file_source_uses_every_ticker_and_sorts_unsorted_rows(write_csv, ohlcv):
    path = write_csv(ohlcv.sample(fraction=1.0, shuffle=True, seed=3))
    loaded = load_ohlcv(load_settings(source=str(path), period="10y"))
    assert loaded.tickers == ("AAA", "BBB")
    assert loaded.source == str(path)
    assert loaded.frame.drop("adj_close").equals(ohlcv.sort("ticker", "date"))
    assert loaded.frame.get_column("adj_close").null_count() == ohlcv.height


def test_parquet_tickers_are_matched_ignoring_case(tmp_path, ohlcv):
    path = tmp_path / "lower.parquet"
    ohlcv.with_columns(pl.col("ticker").str.to_lowercase()).write_parquet(path)
    loaded = load_ohlcv(load_settings(source=str(path), tickers="AAA"))
    assert loaded.tickers == ("AAA",)
