"""`mptrain data fetch` and `mptrain data info` over a fake Yahoo: warming the cache for
CI, inspecting it offline, and failing with the seed's message when nothing downloads."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from marketpredictor_train.data import yahoo_refresh


def flat(text: str) -> str:
    return " ".join(text.split())


def test_fetch_warms_the_cache_and_info_shows_it(cli, fake_yahoo, tmp_path):
    cache = tmp_path / "ci-cache"
    result = cli("data", "fetch", "--tickers", "AAA,BBB", "--period", "1y", "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    assert "2 of 2 tickers cached" in flat(result.output)
    assert sorted(p.name for p in (cache / "yahoo" / "daily").glob("*.parquet")) == [
        "AAA.parquet",
        "BBB.parquet",
    ]
    info = cli("data", "info", "--cache-dir", cache, "--json")
    assert info.exit_code == 0, info.output
    doc = json.loads(info.stdout)
    rows = {t["ticker"]: t for t in doc["tickers"]}
    assert set(rows) == {"AAA", "BBB"}
    assert rows["AAA"]["status"] == "fresh"
    assert rows["AAA"]["last"] == "2025-06-17"
    assert rows["AAA"]["rows"] > 250
    assert rows["AAA"]["size_bytes"] > 0
    assert rows["AAA"]["days_behind"] == 0


def test_info_table_shows_staleness_without_network(cli, fake_yahoo, monkeypatch):
    assert cli("data", "fetch", "--tickers", "AAA", "--period", "1y").exit_code == 0
    fake_yahoo.broken = True
    monkeypatch.setattr(yahoo_refresh, "today", lambda: dt.date(2025, 6, 27))
    result = cli("data", "info", "--tickers", "AAA,ZZZ")
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "stale" in out and "9 d" in out and "2025-06-17" in out
    assert "Not cached: ZZZ" in out


def test_info_verify_finds_a_corrupt_file(cli, fake_yahoo):
    from marketpredictor_train.config import load_settings
    from marketpredictor_train.data.cache import OhlcvCache

    assert cli("data", "fetch", "--tickers", "AAA,BBB", "--period", "1y").exit_code == 0
    path = OhlcvCache(load_settings().cache_dir).path("BBB")
    path.write_bytes(path.read_bytes()[:100])
    doc = json.loads(cli("data", "info", "--json", "--verify").stdout)
    status = {t["ticker"]: t["status"] for t in doc["tickers"]}
    assert status == {"AAA": "fresh", "BBB": "corrupt"}


def test_second_fetch_downloads_only_new_days(cli, fake_yahoo, monkeypatch):
    assert cli("data", "fetch", "--tickers", "AAA", "--period", "1y").exit_code == 0
    fake_yahoo.calls.clear()
    monkeypatch.setattr(yahoo_refresh, "today", lambda: dt.date(2025, 6, 20))
    result = cli("data", "fetch", "--tickers", "AAA", "--period", "1y", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["tickers"][0]["status"] == "updated"
    assert doc["tickers"][0]["new_rows"] == 2  # 18 and 19 June
    ((start, _),) = fake_yahoo.requested("AAA")
    assert start > dt.date(2025, 6, 1)


def test_fetch_nothing_downloadable_exits_1_with_the_seed_message(
    cli, fake_yahoo, monkeypatch, sleeps
):
    import yfinance

    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())
    result = cli("data", "fetch", "--tickers", "AAA,BBB", "--period", "1y")
    assert result.exit_code == 1
    out = flat(result.output)
    assert "Dataset is empty after build_dataset" in out
    assert "--period 1y" in out


def test_fetch_refuses_offline(cli, fake_yahoo, monkeypatch):
    monkeypatch.setenv("MPTRAIN_OFFLINE", "1")
    result = cli("data", "fetch", "--tickers", "AAA")
    assert result.exit_code == 3
    assert "offline" in flat(result.output)


def test_check_offline_yahoo_with_empty_cache_is_the_seed_error(cli, fake_yahoo):
    fake_yahoo.broken = True
    result = cli("data", "check", "--source", "yahoo", "--offline", "--tickers", "AAA")
    assert result.exit_code == 1
    assert "Dataset is empty after build_dataset" in flat(result.output)
    assert fake_yahoo.calls == []


def test_data_commands_have_help(cli):
    for command in ("fetch", "info", "check"):
        result = cli("data", command, "--help")
        assert result.exit_code == 0
        assert "Usage:" in result.output


TWELVE = "AAA,BBB,CCC,DDD,EEE,FFF,GGG,HHH,III,JJJ,KKK,LLL"


def _no_network(monkeypatch) -> list[str]:
    """No route to Yahoo: every HTTP request of yfinance fails as curl does offline (its
    time-zone lookup too, which yfinance then reports as 'possibly delisted')."""
    from curl_cffi import requests
    from curl_cffi.requests.exceptions import DNSError

    asked: list[str] = []

    def offline(self, method, url, *args, **kwargs):
        asked.append(url)
        raise DNSError(
            "Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com. "
            "See https://curl.se/libcurl/c/libcurl-errors.html first for more details.",
            code=6,
        )

    monkeypatch.setattr(requests.Session, "request", offline)
    return asked


def test_without_network_fetch_says_so_once_and_does_not_suggest_itself(cli, monkeypatch, sleeps):
    asked = _no_network(monkeypatch)
    result = cli("data", "fetch", "--tickers", TWELVE, "--period", "1y")
    assert result.exit_code == 1, result.output
    assert asked  # the real yfinance code ran up to the network
    out = flat(result.output)
    assert "possibly delisted" not in out
    assert "left out" in out and out.count("left out") == 1
    assert "the network is unreachable (Could not resolve host: query2.finance.yahoo.com)" in out
    assert "'mptrain data fetch'" not in out  # the hint does not suggest the failed command
    assert "--offline" in out


def test_without_network_train_names_the_network_and_suggests_the_cache(cli, monkeypatch, sleeps):
    _no_network(monkeypatch)
    monkeypatch.setenv("MPTRAIN_MLFLOW", "false")
    result = cli("train", "--dry-run", "--tickers", TWELVE, "--period", "1y")
    assert result.exit_code == 1, result.output
    out = flat(result.output)
    assert out.count("the network is unreachable") == 2  # the log line and the error
    assert "possibly delisted" not in out
    assert "run 'mptrain data fetch' to fill the cache" in out
