"""The yahoo source without network: yfinance's real download() over a fake per-ticker
request, and hand-built frames in yfinance 1.x's shapes for what download() returns."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pandas as pd
import polars as pl
import pytest
from structlog.testing import capture_logs
from yfinance.exceptions import YFRateLimitError

from marketpredictor_train.config import load_settings
from marketpredictor_train.data import load_ohlcv, yahoo_download
from marketpredictor_train.data.yahoo import Backoff, frames_from_download
from marketpredictor_train.errors import DataError


def settings(**kw):
    kw.setdefault("source", "yahoo")
    kw.setdefault("tickers", "AAA,BBB,CCC")
    kw.setdefault("period", "1y")
    return load_settings(**kw)


def test_downloads_several_tickers_into_the_contract_frame(fake_yahoo):
    loaded = load_ohlcv(settings())
    assert loaded.tickers == ("AAA", "BBB", "CCC")
    assert loaded.source == "yahoo"
    assert loaded.dropped == {}
    assert loaded.frame.schema == pl.Schema(
        {"date": pl.Date, "ticker": pl.String, "open": pl.Float64, "high": pl.Float64,
         "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64, "adj_close": pl.Float64}
    )  # fmt: skip
    # Bars up to the last weekday before "today" (2025-06-18): never today's unfinished bar.
    assert loaded.end == dt.date(2025, 6, 17)
    assert loaded.start > dt.date(2024, 6, 17)
    aaa = loaded.frame.filter(pl.col("ticker") == "AAA")
    expected = fake_yahoo.bars("AAA", aaa["date"].min(), dt.date(2025, 6, 18))
    assert np.allclose(aaa["close"].to_numpy(), expected["Close"].to_numpy())
    assert aaa["adj_close"].equals(aaa["close"], check_names=False)
    # One request per ticker, in one batch.
    assert sorted(t for t, _, _ in fake_yahoo.calls) == ["AAA", "BBB", "CCC"]


def test_timezone_aware_index_keeps_the_exchange_date():
    """A Tokyo bar stamped 2025-01-06 00:00+09:00 is a bar of 2025-01-06, not of the 5th."""
    index = pd.DatetimeIndex(["2025-01-06", "2025-01-07"]).tz_localize("Asia/Tokyo")
    columns = pd.MultiIndex.from_product(
        [["Close", "High", "Low", "Open", "Volume"], ["7203.T"]], names=["Price", "Ticker"]
    )
    raw = pd.DataFrame(
        [[10.0, 11.0, 9.0, 10.0, 100], [10.5, 11.0, 10.0, 10.2, 200]], index=index, columns=columns
    )
    frame = frames_from_download(raw, ["7203.T"])["7203.T"]
    assert frame["date"].to_list() == [dt.date(2025, 1, 6), dt.date(2025, 1, 7)]


def test_multiindex_frame_with_partial_nan_rows_drops_only_the_broken_bars():
    index = pd.DatetimeIndex(pd.bdate_range("2025-03-03", periods=4), name="Date")
    columns = pd.MultiIndex.from_product(
        [["Close", "High", "Low", "Open", "Volume"], ["AAA", "BBB"]], names=["Price", "Ticker"]
    )
    raw = pd.DataFrame(np.nan, index=index, columns=columns)
    for t in ("AAA", "BBB"):
        raw[("Open", t)], raw[("High", t)], raw[("Low", t)] = 10.0, 11.0, 9.0
        raw[("Close", t)], raw[("Volume", t)] = 10.5, 1000.0
    raw.loc[index[1], ("Close", "AAA")] = np.nan  # Yahoo left one price out
    raw.loc[index[2], [(c, "BBB") for c in ("Close", "High", "Low", "Open", "Volume")]] = np.nan
    with capture_logs() as logs:
        frames = frames_from_download(raw, ["AAA", "BBB"])
    assert frames["AAA"]["date"].to_list() == [index[0].date(), index[2].date(), index[3].date()]
    # A row with no price at all is the batch's union index, not a bar: dropped silently.
    assert frames["BBB"].height == 3
    warned = [e for e in logs if e["event"] == "leaving out broken Yahoo bars"]
    assert [e["ticker"] for e in warned] == ["AAA"]
    assert str(index[1].date()) in warned[0]["dates"]


def test_partial_nan_rows_through_real_download(fake_yahoo):
    fake_yahoo.nan_days["BBB"] = [dt.date(2025, 6, 10)]
    loaded = load_ohlcv(settings())
    bbb_dates = loaded.frame.filter(pl.col("ticker") == "BBB")["date"].to_list()
    assert dt.date(2025, 6, 10) not in bbb_dates
    assert dt.date(2025, 6, 11) in bbb_dates


def test_rate_limit_is_retried_with_backoff_and_recovers(fake_yahoo, sleeps):
    fake_yahoo.rate_limited["BBB"] = 2
    loaded = load_ohlcv(settings())
    assert loaded.tickers == ("AAA", "BBB", "CCC")
    assert len(sleeps) == 2
    # Retries ask only for what failed.
    assert len(fake_yahoo.requested("AAA")) == 1
    assert len(fake_yahoo.requested("BBB")) == 3


def test_persistent_rate_limit_gives_up_after_the_retry_bound(fake_yahoo, sleeps):
    fake_yahoo.rate_limited["CCC"] = 99
    loaded = load_ohlcv(settings(download_retries=3))
    assert loaded.tickers == ("AAA", "BBB")
    assert "rate limited" in loaded.dropped["CCC"]
    assert "4 attempts" in loaded.dropped["CCC"]
    assert len(sleeps) == 3
    assert len(fake_yahoo.requested("CCC")) == 4


def test_unknown_ticker_is_reported_and_not_retried(fake_yahoo, sleeps):
    fake_yahoo.unknown.add("ZZZZ")
    loaded = load_ohlcv(settings(tickers="AAA,BBB,ZZZZ"))
    assert loaded.tickers == ("AAA", "BBB")
    assert "possibly delisted" in loaded.dropped["ZZZZ"]
    assert sleeps == []


def test_backoff_is_exponential_jittered_and_capped():
    backoff = Backoff(retries=8, budget_s=1e9, base_delay_s=1.0, max_delay_s=10.0)
    rng = random.Random(1)
    delays = [backoff.delay(k, rng) for k in range(8)]
    for k, d in enumerate(delays):
        cap = min(10.0, 2.0**k)
        assert cap / 2 <= d <= cap
    assert len(set(delays)) == len(delays)  # jittered, not in lock-step


def test_time_budget_bounds_the_retries(fake_yahoo, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(yahoo_download, "clock", lambda: now[0])
    monkeypatch.setattr(yahoo_download, "BASE_DELAY_S", 4.0)
    monkeypatch.setattr(yahoo_download, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    fake_yahoo.rate_limited["AAA"] = 99
    loaded = load_ohlcv(settings(download_timeout_s=10.0, download_retries=50))
    assert "budget" in loaded.dropped["AAA"]
    assert len(fake_yahoo.requested("AAA")) < 6
    assert now[0] <= 10.0


def test_whole_download_rate_limited_is_retried(fake_yahoo, monkeypatch, sleeps):
    import yfinance

    real = yfinance.download
    failures = [YFRateLimitError(), TimeoutError("read timed out")]

    def flaky(*args, **kwargs):
        if failures:
            raise failures.pop(0)
        return real(*args, **kwargs)

    monkeypatch.setattr(yfinance, "download", flaky)
    loaded = load_ohlcv(settings())
    assert loaded.tickers == ("AAA", "BBB", "CCC")
    assert len(sleeps) == 2


def test_nothing_downloaded_is_the_seed_error_with_what_to_check(fake_yahoo, monkeypatch, sleeps):
    import yfinance

    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())
    with pytest.raises(DataError) as info:
        load_ohlcv(settings(download_retries=1))
    assert info.value.message.startswith("Dataset is empty after build_dataset")
    assert "--period 1y" in info.value.hint
    assert "connection" in info.value.hint
    assert info.value.exit_code == 1


def test_below_min_data_fraction_fails_and_above_goes_on(fake_yahoo):
    fake_yahoo.unknown.update({"BBB", "CCC", "DDD"})
    with pytest.raises(DataError, match="only 1 of 4 tickers"):
        load_ohlcv(settings(tickers="AAA,BBB,CCC,DDD", min_data_fraction=0.5))
    loaded = load_ohlcv(settings(tickers="AAA,BBB,CCC,DDD", min_data_fraction=0.25))
    assert loaded.tickers == ("AAA",)
    assert set(loaded.dropped) == {"BBB", "CCC", "DDD"}


def test_batches_follow_download_batch_size(fake_yahoo, monkeypatch):
    import yfinance

    real = yfinance.download
    batches: list[list[str]] = []

    def spy(tickers, *args, **kwargs):
        batches.append(sorted(tickers))
        return real(tickers, *args, **kwargs)

    monkeypatch.setattr(yfinance, "download", spy)
    load_ohlcv(settings(tickers="AAA,BBB,CCC,DDD,EEE", download_batch_size=2))
    assert batches == [["AAA", "BBB"], ["CCC", "DDD"], ["EEE"]]


@pytest.mark.slow  # fetches the whole default universe (500 tickers) through the fake
def test_default_universe_is_used_without_tickers(fake_yahoo):
    from marketpredictor_train.data import DEFAULT_UNIVERSE

    loaded = load_ohlcv(load_settings(source="yahoo", period="1y"))
    assert loaded.tickers == tuple(sorted(DEFAULT_UNIVERSE))
    assert 20 <= len(DEFAULT_UNIVERSE) <= 60


def test_progress_reports_downloads_over_the_whole_universe(fake_yahoo):
    events = []
    load_ohlcv(settings(tickers="AAA,BBB,CCC,DDD", download_batch_size=3), progress=events.append)
    downloads = [(e.completed, e.total) for e in events if e.stage == "download"]
    assert downloads == [(3, 4), (4, 4)]
