"""Benchmark: a cached universe of 500 tickers x 10 years of daily bars (~1.26M rows)
loaded from the Parquet cache into the validated OHLCV frame by ``load_ohlcv``.

Run:  uv run python benchmarks/bench_data.py [--tickers 500] [--years 10] [--repeat 5]

It builds the cache once in a temporary folder (random-walk bars written through the
cache's own writer, so footers and fingerprints are real), then times ``load_ohlcv`` with
``--offline`` semantics: footer checks, one Parquet scan of all files, fingerprint
verification, the OHLCV checks, the period window. Target: under 1 s on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import structlog

from marketpredictor_train.config import load_settings
from marketpredictor_train.data import load_ohlcv
from marketpredictor_train.data.cache import OhlcvCache
from marketpredictor_train.data.yahoo import SOURCE, window

TRADING_DAYS_PER_YEAR = 252


def build_cache(root: Path, tickers: list[str], years: int) -> int:
    """Write one cache file per ticker; returns the number of rows written."""
    settings = load_settings(source="yahoo", period=f"{years}y", cache_dir=root)
    start, through = window(settings)
    days = TRADING_DAYS_PER_YEAR * years
    dates = pl.date_range(start, through, "1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5).tail(days)
    cache = OhlcvCache(root, SOURCE)
    rng = np.random.default_rng(0)
    total = 0
    for ticker in tickers:
        n = dates.len()
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
        spread = rng.uniform(0.001, 0.02, n)
        frame = pl.DataFrame(
            {
                "date": dates,
                "ticker": ticker,
                "open": close * (1 + rng.uniform(-0.5, 0.5, n) * spread),
                "high": close * (1 + spread),
                "low": close * (1 - spread),
                "close": close,
                "volume": rng.integers(100_000, 10_000_000, n).astype(float),
                "adj_close": close,
            }
        )
        cache.write(ticker, frame, covered_from=start, checked_through=through)
        total += n
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=10, choices=[1, 2, 3, 5, 10])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    # Only the numbers: the per-run "market data loaded" lines would drown them.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    tickers = [f"T{i:04d}" for i in range(args.tickers)]
    with tempfile.TemporaryDirectory(prefix="mptrain-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        written = build_cache(root, tickers, args.years)
        build_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (root / SOURCE / "daily").glob("*.parquet"))
        print(
            f"cache: {args.tickers} tickers x {args.years} years = {written:,} rows, "
            f"{size / 2**20:.1f} MiB, built in {build_s:.1f} s"
        )

        settings = load_settings(
            source="yahoo",
            tickers=tickers,
            period=f"{args.years}y",
            cache_dir=root,
            offline=True,
        )
        times = []
        rows = 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            loaded = load_ohlcv(settings, min_history=300)
            times.append(time.perf_counter() - t0)
            rows = loaded.rows
            assert len(loaded.tickers) == args.tickers, loaded.dropped
        best, median = min(times), statistics.median(times)
        print(f"load_ohlcv: {rows:,} rows validated, {len(loaded.tickers)} tickers")
        print(
            f"seconds: best {best:.3f}, median {median:.3f} over {args.repeat} runs "
            f"({', '.join(f'{t:.3f}' for t in times)})"
        )
        print(f"rows/s: {rows / best:,.0f} (best), {rows / median:,.0f} (median)")
        print(f"target < 1 s: {'met' if median < 1.0 else 'MISSED'} (median)")


if __name__ == "__main__":
    main()
