"""The validation report (validation.report), called directly on a real ValidationReport
from backtest.evaluate over a small synthetic market: the files it writes, report.json,
the decision, Markdown/HTML escaping, and the number formatting helpers."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import html
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from markdown_it import MarkdownIt

from marketpredictor_train.dataset.split import chronological_split
from marketpredictor_train.features import FeatureSpec, Indicator, build_features, make_labels
from marketpredictor_train.testing.synthetic import synthetic_ohlcv
from marketpredictor_train.validation.backtest import (
    ValidationReport,
    compare_scored,
    evaluate,
    score_model_file,
)
from marketpredictor_train.validation.report import (
    REPORT_HTML,
    REPORT_JSON,
    REPORT_MD,
    metric_cell,
    num,
    p_value,
    pct,
    points,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TITLE = "Validation report - version v0008"
THRESHOLDS = {"accuracy": 0.6, "precision": 0.55, "recall": 0.5, "f1": 0.52}
DECISION = {
    "status": "rejected",
    "passed": False,
    "reason": "Model NOT promoted - accuracy below threshold",
    "notes": ["First note on the decision.", "Second note."],
}
IMPORTANCE = {"ratio|volume": 0.5, "rsi_14": 0.25, "roc_1": 0.125}
ODD_TITLE = 'Validation of model|v2 *candidate*.mptm <script>alert("x")</script> & co'
ODD_DECISION = {"reason": "a < b & **bold** part"}


@dataclasses.dataclass(frozen=True)
class Market:
    ohlcv: pl.DataFrame
    labels: pl.DataFrame  # ticker, date, forward_return, label (no nulls)
    backtest: pl.DataFrame  # the labelled rows of the backtest window
    window: dict


@pytest.fixture(scope="module")
def mkt() -> Market:
    """3 tickers x 200 weekdays; the last 3 months are the backtest (about 190 rows)."""
    ohlcv = synthetic_ohlcv(3, 200, seed=3)
    labels = make_labels(ohlcv, 1).drop_nulls("label")
    window = chronological_split(labels.get_column("date"), backtest_months=3, purge_gap=1)
    backtest = labels.filter(pl.col("date") >= window.backtest_start).sort("ticker", "date")
    return Market(ohlcv, labels, backtest, window.to_dict())


def _evaluate(mkt: Market, proba: np.ndarray, **kwargs) -> ValidationReport:
    return evaluate(
        mkt.backtest,
        proba,
        mkt.ohlcv,
        horizon=1,
        dead_band=0.0,
        cost_per_trade=0.0005,
        thresholds=THRESHOLDS,
        seed=42,
        subject="new model",
        window=mkt.window,
        **kwargs,
    )


@pytest.fixture(scope="module")
def report(mkt: Market) -> ValidationReport:
    """A coin-flip model's report (it fails the accuracy threshold), with a feature
    importance that has a '|' in a feature name."""
    proba = np.random.default_rng(0).uniform(0.2, 0.8, mkt.backtest.height)
    return _evaluate(mkt, proba, version="v0008", model_type="rf", feature_importance=IMPORTANCE)


@pytest.fixture(scope="module")
def champion_report(mkt: Market) -> ValidationReport:
    """A report with a real champion-vs-challenger comparison, assembled as the train
    stage does it: a tiny stored production model (a 3-tree forest on one feature) is
    scored on the backtest rows, against a challenger that is right on every row, so
    McNemar's p-value is far below 0.0001."""
    from marketpredictor_train.models.rf import RandomForestModelType
    from marketpredictor_train.store.modelfile import ModelFile

    spec = FeatureSpec.of(Indicator.create("roc", length=1))
    features = build_features(mkt.ohlcv, spec)
    columns = [c for c in features.columns if c not in ("ticker", "date")]
    train_end = dt.date.fromisoformat(mkt.window["train_end"])
    train = (
        features.join(mkt.labels, on=["ticker", "date"])
        .drop_nulls()
        .filter(pl.col("date") <= train_end)
    )
    model = RandomForestModelType({"n_estimators": 3, "max_depth": 2}, seed=1)
    model.fit(train.select(columns).to_numpy(), train.get_column("label").to_numpy())
    production = ModelFile(
        manifest={
            "model_type": "rf",
            "version": "v0007",
            "params": model.params,
            "feature_spec": spec.to_dict(),
            "feature_spec_hash": spec.hash,
            "feature_columns": columns,
            "label": {"horizon": 1, "dead_band": 0.0},
        },
        payload=model.to_bytes(),
    )
    perfect = mkt.backtest.get_column("label").to_numpy().astype(float)
    base = _evaluate(mkt, perfect, version="v0008", model_type="rf")
    comparison = compare_scored(
        production.manifest,
        score_model_file(production, mkt.ohlcv, mkt.backtest),
        mkt.ohlcv,
        mkt.backtest,
        perfect,
        primary_metric="accuracy",
        horizon=1,
        cost_per_trade=0.0005,
        seed=42,
    )
    return dataclasses.replace(
        base,
        comparison=comparison,
        production_version="v0007",
        warnings=(*base.warnings, *comparison.warnings),
    )


@pytest.fixture(scope="module")
def written(report: ValidationReport, tmp_path_factory: pytest.TempPathFactory):
    """The report written once with a decision, into a folder that does not exist yet."""
    folder = tmp_path_factory.mktemp("report") / "reports" / "v0008"
    files = write_report(report, folder, title=TITLE, decision=DECISION)
    return folder, files


@pytest.fixture(scope="module")
def champion_written(champion_report: ValidationReport, tmp_path_factory):
    """The report with a comparison, written once without a decision."""
    folder = tmp_path_factory.mktemp("champion")
    return folder, write_report(champion_report, folder, title="Champion")


@pytest.fixture(scope="module")
def odd_written(written, report: ValidationReport, tmp_path_factory) -> Path:
    """A copy of `written`, written again under a title and decision full of Markdown
    and HTML specials."""
    import shutil

    folder = tmp_path_factory.mktemp("odd") / "v0008"
    shutil.copytree(written[0], folder)
    write_report(report, folder, title=ODD_TITLE, decision=ODD_DECISION)
    return folder


def render_markdown(text: str) -> str:
    """GitHub-flavoured enough: CommonMark with tables (what a job summary shows)."""
    return MarkdownIt("commonmark").enable("table").render(text)


def section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


# ----------------------------------------------------------------- files


def test_write_report_writes_markdown_html_json_and_every_plot(written):
    """It creates the folder and returns what it wrote: the three documents, then the
    equity, confusion, calibration and feature-importance plots as real PNG files."""
    folder, files = written
    assert [p.name for p in files] == [
        REPORT_MD,
        REPORT_HTML,
        REPORT_JSON,
        "equity.png",
        "confusion.png",
        "calibration.png",
        "importance.png",
    ]
    assert all(p.parent == folder and p.is_file() and p.stat().st_size > 0 for p in files)
    for png in files[3:]:
        assert png.read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in files)


@pytest.mark.slow
def test_without_feature_importance_there_is_no_importance_plot_or_section(
    champion_written,
):
    folder, files = champion_written
    assert [p.name for p in files] == [
        REPORT_MD,
        REPORT_HTML,
        REPORT_JSON,
        "equity.png",
        "confusion.png",
        "calibration.png",
    ]
    md = (folder / REPORT_MD).read_text(encoding="utf-8")
    assert "## Summary" in md and "Feature importance" not in md


def test_html_embeds_every_plot_and_links_to_no_file(written):
    """report.html is self-contained: each PNG is inlined as a data URI with exactly the
    bytes of the PNG file, and nothing else is referenced."""
    folder, files = written
    page = (folder / REPORT_HTML).read_text(encoding="utf-8")
    embedded = dict(re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)">', page))
    assert set(embedded) == {p.name for p in files if p.suffix == ".png"}
    for name, data in embedded.items():
        assert base64.b64decode(data) == (folder / name).read_bytes()
    assert page.count("src=") == len(embedded) and "href=" not in page


def test_markdown_and_html_have_the_same_sections(written):
    folder, _ = written
    md = (folder / REPORT_MD).read_text(encoding="utf-8")
    page = (folder / REPORT_HTML).read_text(encoding="utf-8")
    md_titles = re.findall(r"^## (.+)$", md, flags=re.M)
    html_titles = [html.unescape(t) for t in re.findall(r"<h2>(.*?)</h2>", page)]
    assert md_titles == html_titles
    assert md_titles[0] == "Summary" and md_titles[-1] == "Notes"
    assert "Feature importance (top 3)" in md_titles
    assert "Plots (in report.html): confusion.png, calibration.png" in md


@pytest.mark.slow
def test_rewriting_a_report_replaces_its_files_and_leaves_no_temp_files(written, odd_written: Path):
    """Writing into a folder that holds a report replaces each file (no temp files
    left, no file of the old report kept under another name)."""
    md = (odd_written / REPORT_MD).read_text(encoding="utf-8")
    assert md.startswith("# Validation of model") and TITLE not in md
    doc = json.loads((odd_written / REPORT_JSON).read_text(encoding="utf-8"))
    assert doc["title"] == ODD_TITLE and doc["decision"] == ODD_DECISION
    assert sorted(p.name for p in odd_written.iterdir()) == sorted(p.name for p in written[1])
    old_md = (written[0] / REPORT_MD).read_text(encoding="utf-8")
    assert old_md.startswith(f"# {TITLE}\n")  # the original folder is untouched


# ----------------------------------------------------------------- report.json


def test_report_json_is_the_title_the_decision_and_the_report_to_dict(
    written, report: ValidationReport
):
    folder, _ = written
    doc = json.loads((folder / REPORT_JSON).read_text(encoding="utf-8"))
    assert doc.pop("title") == TITLE
    assert doc.pop("decision") == DECISION
    assert doc == report.to_dict()
    assert doc["window"]["purge_gap_days"] == 1 and doc["version"] == "v0008"
    assert doc["feature_importance"] == IMPORTANCE


def test_report_json_round_trips_a_report_with_a_comparison(
    champion_written, champion_report: ValidationReport
):
    folder, _ = champion_written
    doc = json.loads((folder / REPORT_JSON).read_text(encoding="utf-8"))
    assert doc.pop("title") == "Champion" and doc.pop("decision") == {}
    assert doc == champion_report.to_dict()
    assert doc["comparison"]["production_version"] == "v0007"


# ----------------------------------------------------------------- decision


def test_the_decision_and_its_notes_open_the_summary(written):
    folder, _ = written
    md = (folder / REPORT_MD).read_text(encoding="utf-8")
    summary = section(md, "## Summary", "## Metrics vs thresholds")
    paragraphs = [p for p in summary.split("\n\n")[1:] if p.strip()]
    assert paragraphs[:3] == [
        "**Decision:** Model NOT promoted - accuracy below threshold",
        "First note on the decision.",
        "Second note.",
    ]
    assert paragraphs[3].startswith("Backtest ")
    page = (folder / REPORT_HTML).read_text(encoding="utf-8")
    assert "<p><strong>Decision:</strong> Model NOT promoted - accuracy below threshold</p>" in page


def test_without_a_decision_there_is_no_decision_line(champion_written):
    folder, _ = champion_written
    assert "Decision:" not in (folder / REPORT_MD).read_text(encoding="utf-8")
    assert "Decision:" not in (folder / REPORT_HTML).read_text(encoding="utf-8")


def test_a_failed_threshold_is_marked_fail(written, report: ValidationReport):
    """The coin-flip model misses the 60% accuracy bar: its row says FAIL in both
    documents (the HTML cell carries a class for the colour)."""
    assert not report.thresholds["accuracy"].passed
    folder, _ = written
    md = (folder / REPORT_MD).read_text(encoding="utf-8")
    row = next(line for line in md.splitlines() if line.startswith("| accuracy |"))
    assert row.endswith("| 60.00% | FAIL |")
    assert pct(report.metrics["accuracy"]) in row
    page = (folder / REPORT_HTML).read_text(encoding="utf-8")
    assert '<td class="FAIL">FAIL</td>' in page


# ----------------------------------------------------------------- escaping


def test_html_escapes_the_title_and_the_decision_text(odd_written: Path):
    page = (odd_written / REPORT_HTML).read_text(encoding="utf-8")
    assert "<script>" not in page
    assert f"<title>{html.escape(ODD_TITLE)}</title>" in page
    assert f"<h1>{html.escape(ODD_TITLE)}</h1>" in page
    assert "<strong>Decision:</strong> a &lt; b &amp; <strong>bold</strong> part" in page


def test_a_pipe_in_a_table_cell_is_escaped_so_the_row_keeps_its_columns(written):
    """A '|' inside a cell (here a feature name) would split the Markdown table row;
    it is written as '\\|' and renders as one cell holding the name."""
    folder, _ = written
    md = (folder / REPORT_MD).read_text(encoding="utf-8")
    assert "| ratio\\|volume | 0.5000 |" in md
    rendered = render_markdown(md)
    table = section(rendered, "<h2>Feature importance (top 3)</h2>", "</table>")
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
    cells = [re.findall(r"<t[hd]>(.*?)</t[hd]>", row, flags=re.S) for row in rows]
    assert cells == [
        ["feature", "importance"],
        ["ratio|volume", "0.5000"],
        ["rsi_14", "0.2500"],
        ["roc_1", "0.1250"],
    ]


def test_markdown_title_with_a_pipe_and_stars_renders_literally(odd_written: Path):
    md = (odd_written / REPORT_MD).read_text(encoding="utf-8")
    heading = re.search(r"<h1>(.*?)</h1>", render_markdown(md))
    assert heading is not None
    assert html.unescape(heading.group(1)) == ODD_TITLE


# ----------------------------------------------------------------- comparison, p-value


def test_a_p_value_too_small_to_print_reads_less_than_0_0001(
    champion_written, champion_report: ValidationReport
):
    """McNemar's p here is ~1e-30: the report says '< 0.0001', never '= 0.0000'."""
    comparison = champion_report.comparison
    assert comparison is not None
    assert comparison.mcnemar["p_value"] < 1e-4
    assert comparison.mcnemar["production_only_correct"] == 0
    folder, _ = champion_written
    md = (folder / REPORT_MD).read_text(encoding="utf-8")
    n = comparison.n_common
    assert f"## Champion vs challenger (production v0007, {n:,} common rows)" in md
    mcnemar = next(line for line in md.splitlines() if line.startswith("McNemar"))
    assert mcnemar.startswith("McNemar mid-p on accuracy: p < 0.0001 (only the new model right")
    assert "0.0000" not in mcnemar
    page = (folder / REPORT_HTML).read_text(encoding="utf-8")
    assert "McNemar mid-p on accuracy: p &lt; 0.0001" in page


# ----------------------------------------------------------------- formatting helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, "< 0.0001"),
        (1e-30, "< 0.0001"),
        (9.99e-5, "< 0.0001"),  # would print as 0.0001, but it is below it
        (1e-4, "= 0.0001"),
        (0.000149, "= 0.0001"),
        (0.012345, "= 0.0123"),
        (0.5, "= 0.5000"),
        (1.0, "= 1.0000"),
    ],
)
def test_p_value_never_prints_a_misleading_zero(value, expected):
    assert p_value(value) == expected


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (0.5, 2, "50.00%"),
        (0.123456, 1, "12.3%"),
        (0, 2, "0.00%"),  # zero is a value, not "missing"
        (1, 0, "100%"),
        (-0.0421, 2, "-4.21%"),
        (np.float64(0.25), 2, "25.00%"),
        (None, 2, "-"),
    ],
)
def test_pct_formats_a_proportion_as_percent(value, digits, expected):
    assert pct(value, digits) == expected


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (0.123456, 4, "0.1235"),
        (2, 2, "2.00"),
        (0.0, 4, "0.0000"),
        (np.float32(0.5), 3, "0.500"),
        (None, 4, "-"),
    ],
)
def test_num_formats_a_number_with_fixed_digits(value, digits, expected):
    assert num(value, digits) == expected


def test_pct_and_num_default_to_two_and_four_digits():
    assert pct(1 / 3) == "33.33%"
    assert num(1 / 3) == "0.3333"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0123, "+1.23 pts"),
        (-0.005, "-0.50 pts"),
        (0.0, "+0.00 pts"),
        (1.0, "+100.00 pts"),
        (None, "-"),
    ],
)
def test_points_is_a_signed_difference_in_percentage_points(value, expected):
    assert points(value) == expected


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("accuracy", 0.5512, "55.12%"),
        ("precision", 0.5, "50.00%"),
        ("recall", 1.0, "100.00%"),
        ("f1", 0.25, "25.00%"),
        ("roc_auc", 0.5512, "0.5512"),
        ("log_loss", 0.693147, "0.6931"),
        ("brier", 0.25, "0.2500"),
        ("accuracy", None, "-"),
        ("roc_auc", None, "-"),
    ],
)
def test_metric_cell_shows_rates_as_percent_and_scores_as_numbers(name, value, expected):
    assert metric_cell(name, value) == expected


# ----------------------------------------------------------------- intervals


def test_the_report_states_the_effective_sample_size_and_the_sharpe_intervals(
    written, report: ValidationReport
):
    md = (written[0] / REPORT_MD).read_text()
    ci = report.accuracy_ci
    assert ci["effective_n"] == pytest.approx(ci["n_days"] / report.horizon)
    assert ci["horizon"] == report.horizon and ci["level"] == 0.95
    assert f"Effective sample size: {report.independent_outcomes}." in md
    assert f"about {ci['n_days']} independent outcomes ({ci['n_days']} trading days" in md
    trading = section(md, "## Trading view", "## Per ticker")
    strategy, difference = report.trading.sharpe_ci, report.trading.sharpe_difference_ci
    assert strategy is not None and difference is not None
    assert f"| Sharpe, 95% CI | {strategy.low:.2f} .. {strategy.high:.2f} |" in trading
    assert f"95% CI {difference.low:+.2f} .. {difference.high:+.2f} (paired" in trading


def test_the_console_says_how_many_independent_outcomes_and_shows_the_sharpe_intervals(
    report: ValidationReport, monkeypatch: pytest.MonkeyPatch
):
    import io

    from rich.console import Console

    from marketpredictor_train.cli import _console, _render

    console = Console(file=io.StringIO(), width=200)
    monkeypatch.setattr(_console, "err_console", lambda: console)
    _render._render_validation(report)
    text = console.file.getvalue()
    assert report.independent_outcomes in text
    strategy = report.trading.sharpe_ci
    assert strategy is not None
    assert f"(95% CI {strategy.low:.2f} .. {strategy.high:.2f})" in text
    assert "Sharpe difference" in text


def test_mlflow_metrics_carry_the_effective_sample_size_and_the_sharpe_intervals(
    report: ValidationReport,
):
    from marketpredictor_train.tracking.mlflow_runs import report_metrics

    values = report_metrics(report)
    assert values["accuracy_ci_effective_n"] == report.accuracy_ci["effective_n"]
    strategy = report.trading.sharpe_ci
    assert strategy is not None
    assert values["strategy_sharpe_ci_low"] == pytest.approx(strategy.low)
    assert values["sharpe_difference_vs_buy_and_hold"] == pytest.approx(
        report.trading.sharpe_difference
    )
    assert {"sharpe_difference_ci_low", "sharpe_difference_ci_high"} <= set(values)
