"""The per-ticker Parquet cache: incremental refresh, offline use, corruption, atomic and
concurrent writes."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from marketpredictor_train.config import load_settings
from marketpredictor_train.data import load_ohlcv, yahoo_refresh
from marketpredictor_train.data.cache import CacheCorrupt, OhlcvCache
from marketpredictor_train.errors import DataError


def settings(**kw):
    kw.setdefault("source", "yahoo")
    kw.setdefault("tickers", "AAA,BBB")
    kw.setdefault("period", "2y")
    return load_settings(**kw)


def cache_of(s) -> OhlcvCache:
    return OhlcvCache(s.cache_dir, "yahoo")


def test_cache_layout_is_one_parquet_file_per_ticker(fake_yahoo):
    s = settings(tickers="AAA,BRK-B,^GSPC")
    load_ohlcv(s)
    files = sorted(p.name for p in (Path(s.cache_dir) / "yahoo" / "daily").glob("*.parquet"))
    assert files == ["AAA.parquet", "BRK-B.parquet", "^GSPC.parquet"]
    assert cache_of(s).cached_tickers() == ["AAA", "BRK-B", "^GSPC"]


def test_fresh_cache_needs_no_network(fake_yahoo):
    s = settings()
    first = load_ohlcv(s)
    fake_yahoo.broken = True  # any request now fails the test
    second = load_ohlcv(s)
    assert second.frame.equals(first.frame)


def test_second_run_fetches_only_the_missing_recent_days(fake_yahoo, monkeypatch):
    s = settings()
    load_ohlcv(s)
    full_start = fake_yahoo.requested("AAA")[0][0]
    fake_yahoo.calls.clear()
    monkeypatch.setattr(yahoo_refresh, "today", lambda: dt.date(2025, 6, 25))
    loaded = load_ohlcv(s)
    ((start, end),) = fake_yahoo.requested("AAA")
    # Only the tail since the last cached bar (2025-06-17), with a short overlap.
    assert start >= dt.date(2025, 6, 17) - dt.timedelta(days=yahoo_refresh.OVERLAP_DAYS)
    assert start > full_start
    assert end == dt.date(2025, 6, 25)
    assert loaded.end == dt.date(2025, 6, 24)
    aaa = loaded.frame.filter(pl.col("ticker") == "AAA")
    assert aaa["date"].is_unique().all()
    assert aaa["date"].is_sorted()
    expected = fake_yahoo.bars("AAA", aaa["date"].min(), dt.date(2025, 6, 25))
    assert aaa.height == len(expected)


def test_readjusted_history_is_fetched_again_in_full(fake_yahoo, monkeypatch):
    """A dividend changes every adjusted price before it; stitching new bars onto the
    old basis would fake a jump, so the overlap check refetches the ticker."""
    s = settings()
    load_ohlcv(s)
    fake_yahoo.calls.clear()
    fake_yahoo.scale["AAA"] = 0.98
    monkeypatch.setattr(yahoo_refresh, "today", lambda: dt.date(2025, 6, 25))
    loaded = load_ohlcv(s)
    assert len(fake_yahoo.requested("AAA")) == 2  # the tail, then the whole window
    assert len(fake_yahoo.requested("BBB")) == 1
    aaa = loaded.frame.filter(pl.col("ticker") == "AAA")
    expected = fake_yahoo.bars("AAA", aaa["date"].min(), dt.date(2025, 6, 25))
    assert aaa["close"].to_list() == pytest.approx(expected["Close"].to_list())


def test_longer_period_than_cached_fetches_the_older_history(fake_yahoo):
    load_ohlcv(settings(period="1y"))
    fake_yahoo.calls.clear()
    loaded = load_ohlcv(settings(period="3y"))
    assert len(fake_yahoo.requested("AAA")) == 1
    assert loaded.start < dt.date(2022, 7, 1)


def test_offline_trains_from_the_cache_without_network(fake_yahoo, monkeypatch):
    load_ohlcv(settings())
    fake_yahoo.broken = True
    monkeypatch.setattr(yahoo_refresh, "today", lambda: dt.date(2025, 7, 30))
    loaded = load_ohlcv(settings(offline=True))
    assert loaded.tickers == ("AAA", "BBB")
    assert loaded.end == dt.date(2025, 6, 17)


def test_offline_with_empty_cache_is_the_seed_error(fake_yahoo):
    fake_yahoo.broken = True
    with pytest.raises(DataError) as info:
        load_ohlcv(settings(offline=True))
    assert info.value.message.startswith("Dataset is empty after build_dataset")
    assert "not in the cache" in info.value.message


def test_offline_leaves_out_uncached_tickers(fake_yahoo):
    load_ohlcv(settings(tickers="AAA"))
    fake_yahoo.broken = True
    loaded = load_ohlcv(settings(tickers="AAA,BBB", offline=True, min_data_fraction=0.5))
    assert loaded.tickers == ("AAA",)
    assert "not in the cache" in loaded.dropped["BBB"]


def test_download_failure_falls_back_to_stale_cached_bars(fake_yahoo, monkeypatch, sleeps):
    s = settings(download_retries=1)
    load_ohlcv(s)
    fake_yahoo.rate_limited["AAA"] = 99
    monkeypatch.setattr(yahoo_refresh, "today", lambda: dt.date(2025, 6, 25))
    loaded = load_ohlcv(s)
    assert loaded.tickers == ("AAA", "BBB")
    aaa = loaded.frame.filter(pl.col("ticker") == "AAA")
    assert aaa["date"].max() == dt.date(2025, 6, 17)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _retype_volume(path: Path) -> None:
    """Our footer, but a column of another type: the schema check must catch it."""
    table = pq.read_table(path)
    frame = pl.from_arrow(table).with_columns(pl.col("volume").cast(pl.Int64))
    pq.write_table(frame.to_arrow().replace_schema_metadata(table.schema.metadata), path)


@pytest.mark.parametrize(
    "damage",
    [
        _truncate,
        lambda p: p.write_bytes(b"not parquet at all" * 50),
        lambda p: p.write_bytes(b""),
        lambda p: pl.DataFrame({"x": [1, 2]}).write_parquet(p),
        _retype_volume,
    ],
    ids=["truncated", "garbage", "empty", "foreign-parquet", "wrong-schema"],
)
def test_corrupt_cache_file_is_detected_and_refetched(fake_yahoo, damage):
    s = settings()
    first = load_ohlcv(s)
    damage(cache_of(s).path("AAA"))
    fake_yahoo.calls.clear()
    again = load_ohlcv(s)
    assert again.frame.equals(first.frame)
    assert len(fake_yahoo.requested("AAA")) == 1
    assert fake_yahoo.requested("BBB") == []


def _rewrite_with_changed_close(path: Path) -> None:
    """Change one value but keep the footer: only the fingerprint can tell."""
    table = pq.read_table(path)
    frame = pl.from_arrow(table)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 5)
        .then(pl.col("close") * 1.001)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    pq.write_table(frame.to_arrow().replace_schema_metadata(table.schema.metadata), path)


def test_changed_values_are_detected_by_the_fingerprint(fake_yahoo):
    s = settings()
    first = load_ohlcv(s)
    _rewrite_with_changed_close(cache_of(s).path("AAA"))
    with pytest.raises(CacheCorrupt, match="fingerprint"):
        cache_of(s).read("AAA")
    fake_yahoo.calls.clear()
    again = load_ohlcv(s)
    assert again.frame.equals(first.frame)
    assert len(fake_yahoo.requested("AAA")) == 1


def test_offline_never_trusts_a_corrupt_file(fake_yahoo):
    s = settings()
    load_ohlcv(s)
    _truncate(cache_of(s).path("BBB"))
    fake_yahoo.broken = True
    loaded = load_ohlcv(settings(offline=True))
    assert loaded.tickers == ("AAA",)
    assert "corrupt" in loaded.dropped["BBB"]


def test_a_failed_write_leaves_the_old_file_and_no_debris(fake_yahoo, monkeypatch):
    s = settings()
    load_ohlcv(s)
    cache = cache_of(s)
    before = cache.path("AAA").read_bytes()
    frame, _ = cache.read("AAA")

    def crash(table, where, **kwargs):
        where.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        cache.write(
            "AAA", frame, covered_from=dt.date(2020, 1, 1), checked_through=dt.date(2025, 6, 17)
        )
    assert cache.path("AAA").read_bytes() == before
    assert [p.name for p in cache.dir.iterdir() if p.name.endswith(".tmp")] == []


ROUNDS = 25


def _merge_many(root: str, offset: int, rounds: int, barrier) -> None:
    from tests.data.fakes import make_ohlcv

    cache = OhlcvCache(Path(root), "yahoo")
    full = make_ohlcv(("AAA",), days=80, seed=1).with_columns(pl.col("close").alias("adj_close"))
    barrier.wait(30)  # both processes are warm: the merges below really overlap
    for i in range(rounds):
        lo = (offset + i * 7) % 60
        part = full.slice(lo, 20)
        cache.merge(
            "AAA", part, covered_from=dt.date(2023, 1, 2), checked_through=dt.date(2023, 6, 1)
        )


@pytest.mark.slow
def test_concurrent_writers_never_lose_or_break_the_file(tmp_path):
    """Two processes merge overlapping slices into one ticker at once: every slice
    survives (union of dates) and the file stays valid."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_merge_many, args=(str(tmp_path), off, ROUNDS, barrier))
        for off in (0, 3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    frame, meta = OhlcvCache(tmp_path, "yahoo").read("AAA")
    written = set()
    for off in (0, 3):
        for i in range(ROUNDS):
            lo = (off + i * 7) % 60
            written.update(range(lo, lo + 20))
    assert frame.height == len(written) == meta.rows
    assert frame["date"].is_unique().all()
    assert not [p for p in os.listdir(tmp_path / "yahoo" / "daily") if p.endswith(".tmp")]


def test_bars_that_keep_their_sums_but_break_the_checks_are_caught(fake_yahoo):
    """Swapping high and low keeps every fingerprint sum; the OHLCV checks still see it."""
    s = settings()
    first = load_ohlcv(s)
    path = cache_of(s).path("BBB")
    table = pq.read_table(path)
    frame = pl.from_arrow(table)
    swap = pl.int_range(pl.len()) == 3
    frame = frame.with_columns(
        pl.when(swap).then(pl.col("low")).otherwise(pl.col("high")).alias("high"),
        pl.when(swap).then(pl.col("high")).otherwise(pl.col("low")).alias("low"),
    )
    pq.write_table(frame.to_arrow().replace_schema_metadata(table.schema.metadata), path)
    with pytest.raises(CacheCorrupt, match="high below low"):
        cache_of(s).read("BBB")
    fake_yahoo.calls.clear()
    again = load_ohlcv(s)
    assert again.frame.equals(first.frame)
    assert len(fake_yahoo.requested("BBB")) == 1
    assert fake_yahoo.requested("AAA") == []
