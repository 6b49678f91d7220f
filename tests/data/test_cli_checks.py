"""Every input check of the data layer, through the real CLI: `mptrain data check --source
PATH` exits 1 and names the tickers and dates at fault (3 for a path that is not there)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from tests.data.fakes import make_ohlcv


def flat(text: str) -> str:
    """The console wraps long lines; compare with whitespace collapsed."""
    return " ".join(text.split())


def set_value(frame: pl.DataFrame, ticker: str, day: dt.date, column: str, value) -> pl.DataFrame:
    hit = (pl.col("ticker") == ticker) & (pl.col("date") == day)
    return frame.with_columns(
        pl.when(hit).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )


DAY = dt.date(2023, 1, 10)


@pytest.fixture
def base() -> pl.DataFrame:
    return make_ohlcv(("AAA", "BBB"), days=40)


def check(cli, path: Path, *extra: str):
    return cli("data", "check", "--source", str(path), "--period", "10y", *extra)


def test_clean_file_passes_and_lists_tickers(cli, write_csv, base):
    result = check(cli, write_csv(base))
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "AAA" in out and "BBB" in out
    assert "80 rows pass every check" in out


def test_columns_match_ignoring_case_and_adj_close_is_optional(cli, write_csv, base):
    renamed = base.rename({"date": "Date", "ticker": "TICKER", "close": "Close"})
    renamed = renamed.with_columns(pl.col("Close").alias("Adj Close"))
    assert check(cli, write_csv(renamed)).exit_code == 0


def test_missing_column_is_named(cli, write_csv, base):
    result = check(cli, write_csv(base.drop("volume")))
    assert result.exit_code == 1
    out = flat(result.output)
    assert "Missing column" in out and "volume" in out
    assert "found: date, ticker, open, high, low, close" in out


def test_misnamed_column_gets_a_rename_suggestion(cli, write_csv, base):
    result = check(cli, write_csv(base.rename({"close": "closing"})))
    assert result.exit_code == 1
    out = flat(result.output)
    assert "close" in out and "rename 'closing' to 'close'" in out


def test_non_numeric_value_names_row_ticker_and_value(cli, write_csv, base):
    text = base.with_columns(pl.col("close").cast(pl.String))
    text = set_value(text, "BBB", DAY, "close", "12,5 USD")
    result = check(cli, write_csv(text))
    assert result.exit_code == 1
    out = flat(result.output)
    assert "non-numeric values in 'close'" in out
    assert "BBB '12,5 USD'" in out


def test_unparseable_date_is_named(cli, write_csv, base):
    text = base.with_columns(pl.col("date").cast(pl.String))
    text = text.with_columns(
        pl.when(pl.col("date") == str(DAY))
        .then(pl.lit("10/01/2023"))
        .otherwise("date")
        .alias("date")
    )
    result = check(cli, write_csv(text))
    assert result.exit_code == 1
    out = flat(result.output)
    assert "dates that are not ISO dates" in out and "'10/01/2023'" in out


def test_timestamps_with_time_zones_are_dates_of_the_exchange(cli, write_csv, base):
    text = base.with_columns(
        (pl.col("date").cast(pl.String) + pl.lit(" 00:00:00-05:00")).alias("date")
    )
    result = check(cli, write_csv(text), "--json")
    assert result.exit_code == 0, result.output
    assert '"start": "2023-01-02"' in result.output


@pytest.mark.parametrize(
    ("column", "value", "what"),
    [
        ("close", float("nan"), "missing or NaN prices"),
        ("close", None, "missing or NaN prices"),
        ("high", float("inf"), "infinite prices"),
        ("open", 0.0, "prices <= 0"),
        ("low", -3.0, "prices <= 0"),
        ("volume", -100.0, "negative volume"),
    ],
)
def test_bad_values_name_ticker_and_date(cli, write_csv, base, column, value, what):
    bad = set_value(base, "BBB", DAY, column, value)
    result = check(cli, write_csv(bad))
    assert result.exit_code == 1
    out = flat(result.output)
    assert what in out
    assert f"BBB {DAY}" in out


def test_high_below_low_is_named(cli, write_csv, base):
    row = base.filter((pl.col("ticker") == "AAA") & (pl.col("date") == DAY))
    bad = set_value(base, "AAA", DAY, "high", row["low"][0] * 0.9)
    result = check(cli, write_csv(bad))
    assert result.exit_code == 1
    out = flat(result.output)
    assert "high below low" in out and f"AAA {DAY}" in out


@pytest.mark.parametrize("column", ["open", "close"])
def test_open_or_close_outside_the_day_range_is_named(cli, write_csv, base, column):
    row = base.filter((pl.col("ticker") == "AAA") & (pl.col("date") == DAY))
    bad = set_value(base, "AAA", DAY, column, row["high"][0] * 1.05)
    result = check(cli, write_csv(bad))
    assert result.exit_code == 1
    out = flat(result.output)
    assert "open or close outside [low, high]" in out and f"AAA {DAY}" in out


def test_duplicate_rows_are_named(cli, write_csv, base):
    dup = pl.concat([base, base.filter((pl.col("ticker") == "BBB") & (pl.col("date") == DAY))])
    result = check(cli, write_csv(dup))
    assert result.exit_code == 1
    out = flat(result.output)
    assert "duplicate (ticker, date) rows" in out and f"BBB {DAY}" in out


def test_duplicate_across_files_of_a_folder_is_named(cli, write_csv, base):
    write_csv(base.filter(pl.col("ticker") == "AAA"), "aaa.csv")
    path = write_csv(base.filter(pl.col("date") == DAY), "extra.csv")
    result = check(cli, path.parent)
    assert result.exit_code == 1
    assert f"AAA {DAY}" in flat(result.output)


def test_many_bad_rows_are_counted_not_all_listed(cli, write_csv, base):
    bad = base.with_columns(pl.lit(-1.0).alias("volume"))
    out = flat(check(cli, write_csv(bad)).output)
    assert "negative volume: 80 rows" in out and "and 75 more" in out


def test_every_problem_is_reported_at_once(cli, write_csv, base):
    bad = set_value(set_value(base, "AAA", DAY, "volume", -1.0), "BBB", DAY, "close", 0.0)
    out = flat(check(cli, write_csv(bad)).output)
    assert "negative volume" in out and "prices <= 0" in out


def test_empty_file(cli, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    result = check(cli, path)
    assert result.exit_code == 1
    assert "empty.csv is empty" in flat(result.output)


def test_header_only_file(cli, tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("date,ticker,open,high,low,close,volume\n")
    result = check(cli, path)
    assert result.exit_code == 1
    assert "has no rows" in flat(result.output)


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [
        ("prices.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV or Parquet file"),
        ("prices.parquet", b"date,ticker\n2024-01-02,AAA\n", "not a Parquet file"),
        ("prices.xlsx", b"PK\x03\x04 spreadsheet", "not a CSV or Parquet file"),
        ("prices.csv", b"PK\x03\x04\x14\x00 zipped sheet", "ZIP/Excel file"),
        ("prices.parquet", b"PAR1 then nothing useful", "cannot be read as Parquet"),
    ],
)
def test_files_that_are_not_csv_or_parquet(cli, tmp_path, name, content, what):
    path = tmp_path / name
    path.write_bytes(content)
    result = check(cli, path)
    assert result.exit_code == 1
    out = flat(result.output)
    assert what in out and name in out


def test_folder_without_data_files(cli, tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    result = check(cli, tmp_path)
    assert result.exit_code == 1
    assert "No CSV or Parquet files" in flat(result.output)


def test_missing_path_is_a_configuration_error(cli, tmp_path):
    result = check(cli, tmp_path / "nope.csv")
    assert result.exit_code == 3
    assert "nope.csv" in flat(result.output)


def test_parquet_file_and_folder_of_parquet_files(cli, tmp_path, base):
    folder = tmp_path / "pq"
    folder.mkdir()
    for ticker in ("AAA", "BBB"):
        base.filter(pl.col("ticker") == ticker).write_parquet(folder / f"{ticker}.parquet")
    (folder / "README.md").write_text("ignored")
    result = check(cli, folder)
    assert result.exit_code == 0, result.output
    assert "80 rows pass every check" in flat(result.output)


def test_unsorted_input_is_sorted_not_rejected(cli, write_csv, base):
    result = check(cli, write_csv(base.reverse()), "--json")
    assert result.exit_code == 0, result.output


def test_short_ticker_left_out_with_warning(cli, write_csv):
    frame = pl.concat([make_ohlcv(("LONG",), days=60), make_ohlcv(("TINY",), days=10, seed=3)])
    result = check(cli, write_csv(frame), "--min-history", "30")
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "Left out TINY: too little history: 10 rows" in out


def test_only_ticker_too_short_is_insufficient_data(cli, write_csv):
    result = check(cli, write_csv(make_ohlcv(("TINY",), days=10)), "--min-history", "30")
    assert result.exit_code == 1
    assert "Training failed - insufficient data" in flat(result.output)


def test_tickers_not_in_file_are_reported_and_none_left_fails(cli, write_csv, base):
    path = write_csv(base)
    ok = check(cli, path, "--tickers", "AAA,NOPE")
    assert ok.exit_code == 0
    assert "Left out NOPE" in flat(ok.output)
    bad = check(cli, path, "--tickers", "NOPE")
    assert bad.exit_code == 1
    assert "NOPE" in flat(bad.output) and "Available tickers: AAA, BBB" in flat(bad.output)


def test_rows_dated_after_tomorrow_are_refused_naming_ticker_and_date(cli, write_csv):
    today = dt.datetime.now(dt.UTC).date()
    recent = make_ohlcv(("AAA", "BBB"), days=30, start=today - dt.timedelta(days=50))
    ahead = make_ohlcv(("BBB",), days=3, start=today + dt.timedelta(days=7))
    result = check(cli, write_csv(pl.concat([recent, ahead])))
    assert result.exit_code == 1, result.output
    out = flat(result.output)
    first = ahead.get_column("date").min()
    assert "rows dated in the future" in out and f"BBB {first}" in out
    assert "Traceback" not in out


def test_a_bar_of_tomorrow_is_within_the_grace_day(cli, write_csv):
    today = dt.datetime.now(dt.UTC).date()
    frame = make_ohlcv(("AAA",), days=40, start=today - dt.timedelta(days=60))
    tomorrow = frame.tail(1).with_columns(pl.lit(today + dt.timedelta(days=1)).alias("date"))
    result = check(cli, write_csv(pl.concat([frame.filter(pl.col("date") < today), tomorrow])))
    assert result.exit_code == 0, result.output


TRAIN = ("train", "--dry-run", "--period", "10y", "--backtest-months", "1")


@pytest.mark.parametrize(
    ("fault", "what"),
    [
        ("huge", "prices above 1e+12"),
        ("constant", "tickers whose close price never changes"),
        ("future", "rows dated in the future"),
    ],
)
def test_train_names_the_fault_in_the_prices_not_a_lack_of_data(
    cli, write_csv, monkeypatch, fault, what
):
    """Prices near 1e300, constant prices and bars from the future once ended in
    'insufficient data ... use a longer period'."""
    monkeypatch.setenv("MPTRAIN_MLFLOW", "false")
    frame = make_ohlcv(("AAA", "BBB"), days=400, start=dt.date(2021, 1, 4))
    prices = ["open", "high", "low", "close"]
    bbb = pl.col("ticker") == "BBB"
    if fault == "huge":
        frame = frame.with_columns(
            [pl.when(bbb).then(pl.col(c) * 1e300).otherwise(pl.col(c)).alias(c) for c in prices]
        )
    elif fault == "constant":
        frame = frame.with_columns(
            [pl.when(bbb).then(pl.lit(42.0)).otherwise(pl.col(c)).alias(c) for c in prices]
        )
    else:
        frame = frame.with_columns(
            pl.when(bbb).then(pl.col("date") + dt.timedelta(days=3650)).otherwise("date")
        )
    result = cli(*TRAIN, "--source", str(write_csv(frame)), "--output-json", "out.json")
    assert result.exit_code == 1, result.output
    out = flat(result.output)
    assert what in out and "BBB" in out
    assert "insufficient" not in out.lower() and "Traceback" not in out
    assert not Path("models").exists()
