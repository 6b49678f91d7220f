"""Fixtures of the data-layer tests: small seeded OHLCV frames and files, a fake Yahoo."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from tests.data.fakes import FakeYahoo, make_ohlcv


@pytest.fixture
def ohlcv() -> pl.DataFrame:
    return make_ohlcv()


@pytest.fixture
def write_csv(tmp_path: Path):
    """Write a frame as CSV (dates as ISO text) and return the path."""

    def write(frame: pl.DataFrame, name: str = "prices.csv") -> Path:
        path = tmp_path / "input" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_csv(path)
        return path

    return write


@pytest.fixture
def fake_yahoo(monkeypatch: pytest.MonkeyPatch) -> FakeYahoo:
    import yfinance

    from marketpredictor_train.data import yahoo_download, yahoo_refresh

    fake = FakeYahoo()
    monkeypatch.setattr(yfinance.Ticker, "history", lambda tk, *a, **k: fake.history(tk, *a, **k))
    monkeypatch.setattr(yahoo_download, "BASE_DELAY_S", 0.0)
    monkeypatch.setattr(yahoo_refresh, "today", lambda: dt.date(2025, 6, 18))
    return fake


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits of the retry loop, recorded instead of slept."""
    from marketpredictor_train.data import yahoo_download

    waited: list[float] = []
    monkeypatch.setattr(yahoo_download, "sleep", waited.append)
    return waited
