"""`mptrain backtest`: the replay of train's retrain-and-promote gate over past steps, with
real fits on small seeded markets (tests/validation/markets.py): on a random walk every
policy scores about 50% and the gate promotes little; on a market whose learnable signal
appears after the first training window, the gated policy beats always-up and never
retraining; one replayed step is what `mptrain train --dry-run` reports on the data cut at
its date; the worker count changes nothing; an interrupted backtest resumes from its cache;
bad inputs exit with the documented codes and a one-line message."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from marketpredictor_train import api
from marketpredictor_train.config import load_settings
from marketpredictor_train.errors import ConfigError
from marketpredictor_train.pipelines.backtest import POLICIES, Every, parse_every, step_dates
from tests.validation.markets import LOW_BAR, LOW_BAR_FLAGS, business_days, market, write

FOUR = ("AAA", "BBB", "CCC", "DDD")


# ----------------------------------------------------------------------------- fast


@pytest.mark.parametrize(
    ("text", "every"),
    [
        ("1w", Every(1, "w")),
        ("10d", Every(10, "d")),
        ("3m", Every(3, "m")),
        (" 2W ", Every(2, "w")),
    ],
)
def test_every_accepts_days_weeks_and_months_up_to_three_months(text, every):
    assert parse_every(text) == every


@pytest.mark.parametrize("text", ["5x", "w", "0w", "4m", "14w", "100d", "1.5w", ""])
def test_every_refuses_what_is_not_an_interval_from_1d_to_3m(text):
    with pytest.raises(ConfigError) as err:
        parse_every(text)
    assert err.value.exit_code == 3
    assert "--every" in err.value.message


def test_steps_fall_on_the_first_trading_day_on_or_after_each_interval():
    calendar = business_days(60, date(2024, 1, 1)).to_list()
    weekly = step_dates(calendar, date(2024, 1, 6), Every(1, "w"), calendar[-1])
    # 6 January 2024 is a Saturday: the steps are the Mondays after it
    assert weekly[:3] == [date(2024, 1, 8), date(2024, 1, 15), date(2024, 1, 22)]
    assert all(d.weekday() == 0 for d in weekly)
    monthly = step_dates(calendar, date(2024, 1, 31), Every(1, "m"), calendar[-1])
    # 31 January + 1 month is 29 February (a leap year); + 2 months, 31 March, is after
    # the calendar's last day
    assert monthly == [date(2024, 1, 31), date(2024, 2, 29)]
    assert step_dates(calendar, date(2024, 1, 1), Every(1, "d"), calendar[9]) == calendar[:10]


def test_bad_interval_exits_3_with_one_line(cli):
    result = cli("backtest", "--source", "sample", "--every", "5x")
    assert result.exit_code == 3
    assert "--every '5x' is not a retraining interval" in result.output
    assert "Traceback" not in result.output
    assert not Path("models").exists()


def test_start_after_the_last_date_exits_3(cli):
    result = cli("backtest", "--source", "sample", "--start", "2030-01-01")
    assert result.exit_code == 3
    assert "--start 2030-01-01 is after the last date with a label" in result.output
    assert "2013-03-01" in result.output


def test_start_that_is_no_date_exits_3(cli):
    result = cli("backtest", "--source", "sample", "--start", "yesterday")
    assert result.exit_code == 3
    assert "--start 'yesterday' is not a date" in result.output


def test_too_little_data_before_the_first_step_exits_1_before_any_fit(cli, tmp_path):
    data = write(market(seed=3, tickers=FOUR, days=300), tmp_path / "short.csv")
    out = tmp_path / "out.json"
    result = cli("backtest", "--source", data, "--start", "2020-06-01", "--output-json", out, "-q")
    assert result.exit_code == 1
    assert "insufficient data" in result.output
    assert "backtest step 2020-06-01" in result.output
    document = json.loads(out.read_text())
    assert document["command"] == "backtest"
    assert document["status"] == "failed"
    assert document["exit_code"] == 1
    assert not Path("models").exists()


# ----------------------------------------------------------------------------- real fits


def _settings(data: Path, **extra):
    return load_settings(source=str(data), mlflow=False, **extra)


def _comparable(result) -> dict:
    """The result without what depends on the run rather than on the replay."""
    steps = [
        {k: v for k, v in step.items() if k not in ("cached", "fit_seconds")}
        for step in result.steps
    ]
    return {"steps": steps, "summary": result.summary}


@pytest.fixture(scope="module")
def random_walk(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("random_walk")
    return write(market(seed=7, tickers=FOUR, days=800), folder / "walk.csv")


@pytest.mark.slow
def test_random_walk_every_policy_near_half_and_few_promotions(cli, random_walk, tmp_path):
    """Through the CLI: the JSON names scripts rely on, the report, an untouched store."""
    out = tmp_path / "backtest.json"
    start = business_days(800)[500].isoformat()
    result = cli(
        "backtest",
        "--source",
        random_walk,
        *LOW_BAR_FLAGS,
        "--start",
        start,
        "--every",
        "2m",
        "--workers",
        "2",
        "--report-dir",
        tmp_path / "report",
        "--output-json",
        out,
        "-q",
        env={"MPTRAIN_MLFLOW": "false"},
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["command"] == "backtest" and doc["status"] == "completed"
    summary = doc["summary"]
    assert summary["steps"] == len(doc["steps"]) >= 6
    assert set(summary["policies"]) == set(POLICIES)
    for name, policy in summary["policies"].items():
        assert set(policy) >= {
            "accuracy",
            "accuracy_ci",
            "log_loss",
            "cumulative_return",
            "sharpe",
            "max_drawdown",
        }
        assert 0.44 < policy["accuracy"] < 0.56, name
        low, high = policy["accuracy_ci"]
        assert low < policy["accuracy"] < high or low == high == policy["accuracy"]
        assert (policy["log_loss"] is None) == (name in ("always_up", "yesterday"))
    assert summary["promotions"] <= 1
    diff = summary["gated_minus_always_up"]
    assert diff["ci"][0] <= 0 <= diff["ci"][1]
    assert set(diff) >= {"difference", "ci"}
    step = doc["steps"][0]
    assert set(step) >= {"date", "metrics", "promoted", "reason", "champion_version", "policies"}
    assert set(step["policies"]["gated"]) == {"accuracy", "log_loss", "return"}
    # the report, and nothing in the model store
    report = tmp_path / "report"
    assert {p.name for p in report.iterdir()} >= {
        "report.md",
        "report.html",
        "report.json",
        "equity.png",
        "accuracy.png",
    }
    assert "data:image/png;base64," in (report / "report.html").read_text()
    assert not Path("models").exists()
    # the tables fit 80 columns
    assert "Summary:" in result.output and "Backtest steps" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80


@pytest.mark.slow
def test_one_step_is_what_train_dry_run_reports_on_the_data_cut_at_its_date(
    cli, random_walk, tmp_path
):
    start = business_days(800)[560]
    result = api.backtest(
        _settings(random_walk, **LOW_BAR),
        start=start,
        every="3m",
        workers=1,
        cache_dir=tmp_path / "cache",
    )
    step = result.steps[1]  # a later step, with the first step's model as champion or not
    day = date.fromisoformat(step["date"])
    cut = pl.read_csv(random_walk, try_parse_dates=True).filter(pl.col("date") < day)
    data = write(cut, tmp_path / "cut.csv")
    out = tmp_path / "train.json"
    trained = cli(
        "train",
        "--dry-run",
        "--source",
        data,
        *LOW_BAR_FLAGS,
        "--output-json",
        out,
        "-q",
        env={"MPTRAIN_MLFLOW": "false"},
    )
    assert trained.exit_code in (0, 2), trained.output
    doc = json.loads(out.read_text())
    assert doc["n_train"] == step["n_train"]
    assert doc["n_test"] == step["n_test"]
    assert doc["data_window"]["train_end"] == step["train_end"]
    assert doc["data_window"]["backtest_start"] == step["backtest_start"]
    for name, value in step["metrics"].items():
        assert doc["metrics"][name] == pytest.approx(value, abs=1e-12), name
    if step["comparison"] is None:
        # no champion then, as in an empty store: the same decision
        assert doc["passed_validation"] == step["passed"]
        assert doc["reason"] == f"Dry run - not promoted ({step['reason']})"


@pytest.mark.slow
def test_workers_change_nothing_and_an_interrupted_backtest_resumes(random_walk, tmp_path):
    settings = _settings(random_walk, **LOW_BAR)
    start = business_days(800)[680]
    args = {"start": start, "every": "2m"}
    one = api.backtest(settings, workers=1, cache_dir=tmp_path / "one", **args)
    assert one.computed_steps == one.summary["steps"] >= 3

    class Stop(Exception):
        pass

    def stop_after_first_fit(event):
        if event.stage == "backtest" and event.description.endswith("fitted"):
            raise Stop

    with pytest.raises(Stop):
        api.backtest(
            settings,
            workers=2,
            cache_dir=tmp_path / "two",
            progress=stop_after_first_fit,
            **args,
        )
    finished = sorted((tmp_path / "two").rglob("step_*.npz"))
    assert 1 <= len(finished) < one.summary["steps"]

    two = api.backtest(settings, workers=2, cache_dir=tmp_path / "two", **args)
    assert two.cached_steps == len(finished)
    assert two.computed_steps == two.summary["steps"] - len(finished)
    assert _comparable(two) == _comparable(one)

    # a later --start reuses the cached steps: nothing is fitted, and each step's own
    # model scores its period's rows as before
    later = api.backtest(
        settings, workers=2, cache_dir=tmp_path / "two", start=one.steps[1]["date"], every="2m"
    )
    assert later.computed_steps == 0
    assert [s["date"] for s in later.steps] == [s["date"] for s in one.steps[1:]]
    for before, after in zip(one.steps[1:], later.steps, strict=True):
        for key in ("accuracy", "log_loss"):
            assert (
                after["policies"]["always_retrain"][key]
                == (before["policies"]["always_retrain"][key])
            )
        assert after["metrics"] == before["metrics"]


@pytest.mark.slow
def test_planted_signal_gated_beats_always_up_and_never_retraining(tmp_path):
    """The signal appears after the first step's training rows: its model learned noise
    (never retraining keeps it); the gate promotes once a retrained model has learned it."""
    days = 1000
    data = write(market(seed=11, signal=0.3, signal_from=420, days=days), tmp_path / "m.csv")
    result = api.backtest(
        _settings(data),
        start=business_days(days)[560],
        every="3m",
        workers=2,
        cache_dir=tmp_path / "cache",
    )
    summary = result.summary
    policies = summary["policies"]
    assert summary["promotions"] >= 1
    assert not result.steps[0]["promoted"]
    diff = summary["gated_minus_always_up"]
    assert diff["ci"][0] > 0, diff
    assert summary["gated_minus"]["always_up"] == diff
    assert summary["gated_minus"]["never_retrain"]["ci"][0] > 0, summary["gated_minus"]
    assert policies["gated"]["accuracy"] > policies["always_up"]["accuracy"] + 0.03
    assert policies["never_retrain"]["accuracy"] < 0.56


@pytest.mark.slow
def test_summary_and_report_of_policies_scored_on_the_same_rows(tmp_path):
    """Without fits: five policies' calls on one seeded market's rows go through the
    summary (intervals, trading view, paired differences) into the report files."""
    import numpy as np

    from marketpredictor_train.pipelines.backtest import _Scored, _summary_of
    from marketpredictor_train.validation.replay_report import write_backtest_report

    rng = np.random.default_rng(0)
    days = np.repeat(business_days(120).to_numpy(), 2).reshape(120, 2).T.ravel()
    y = rng.integers(0, 2, days.size)
    tickers = np.repeat(["AAA", "BBB"], 120)
    calls = {name: rng.integers(0, 2, days.size) for name in POLICIES}
    calls["gated"] = y.copy()  # a perfect policy
    calls["always_up"] = np.ones(days.size, dtype=int)
    proba = {name: None for name in POLICIES}
    proba["gated"] = np.where(y == 1, 0.9, 0.1)
    settings = load_settings(source="sample")
    summary, curves = _summary_of(
        _Scored(calls, proba),
        y,
        tickers,
        days,
        rng.normal(0, 0.01, days.size),
        settings=settings,
    )
    assert summary["policies"]["gated"]["accuracy"] == 1.0
    assert summary["policies"]["always_up"]["accuracy"] == pytest.approx(y.mean())
    assert summary["gated_minus_always_up"]["ci"][0] > 0
    assert summary["gated_minus"]["always_up"] == summary["gated_minus_always_up"]
    assert summary["policies"]["yesterday"]["log_loss"] is None
    step = {
        "date": "2020-01-01",
        "promoted": True,
        "passed": True,
        "champion_version": "2020-01-01",
        "policies": {n: {"accuracy": 0.5, "log_loss": None, "return": 0.0} for n in POLICIES},
    }
    files = write_backtest_report(
        tmp_path,
        steps=[step, {**step, "date": "2020-02-03", "promoted": False}],
        summary={"steps": 2, "promotions": 1, **summary},
        curves=curves,
        window={"source": "test", "start": "2020-01-01", "end": "2020-06-01", "every": "1m"},
    )
    assert {p.name for p in files} == {
        "report.md",
        "report.html",
        "report.json",
        "equity.png",
        "accuracy.png",
    }
    markdown = (tmp_path / "report.md").read_text()
    assert "| gated (train's gate) | 100.00% |" in markdown
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["promotions"] == 1
