"""The validation report: Markdown (ready for a GitHub job summary), a self-contained HTML
page with the plots embedded, the plots as PNG files, and report.json (the numbers).

Both documents are rendered from one list of sections, so they always say the same thing.
Plots use matplotlib's Agg canvas directly (no pyplot), so no display or global backend
is touched.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marketpredictor_train.fileio import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from marketpredictor_train.validation.backtest import SkillEvidence, ValidationReport
    from marketpredictor_train.validation.intervals import Interval
    from marketpredictor_train.validation.trading import TradingView

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
_TOP_FEATURES = 15

_METRIC_LABELS = {
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "roc_auc": "ROC AUC",
    "log_loss": "log loss",
    "brier": "Brier score",
}


@dataclass
class _Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    table: tuple[list[str], list[list[str]]] | None = None
    after: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)


def pct(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{float(value):.{digits}%}"


def num(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def points(value: Any) -> str:
    """A difference of proportions in percentage points, signed."""
    return "-" if value is None else f"{float(value) * 100:+.2f} pts"


def p_value(value: float) -> str:
    """'= 0.0123', or '< 0.0001' rather than a misleading '= 0.0000'."""
    return "< 0.0001" if value < 1e-4 else f"= {value:.4f}"


def level_text(level: float) -> str:
    """0.95 -> '95%', 0.975 -> '97.5%'."""
    return f"{float(level) * 100:g}%"


def interval_text(interval: Interval | None, *, signed: bool = False, digits: int = 2) -> str:
    """'-1.20 .. 3.40', or '-' when there is no interval."""
    if interval is None:
        return "-"
    sign = "+" if signed else ""
    return f"{interval.low:{sign}.{digits}f} .. {interval.high:{sign}.{digits}f}"


def _level_of(trading: TradingView) -> float:
    interval = trading.sharpe_ci or trading.buy_and_hold_sharpe_ci
    return 0.95 if interval is None else interval.level


def metric_cell(name: str, value: Any) -> str:
    return pct(value) if name in ("accuracy", "precision", "recall", "f1") else num(value)


def write_report(
    report: ValidationReport,
    folder: Path,
    *,
    title: str,
    decision: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write report.md, report.html, report.json and the PNG plots into ``folder``;
    returns the files written. ``decision`` (status, reason, ...) is shown first."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images = _plots(report, folder)
    sections = _sections(report, decision, [p.name for p in images])
    document = {"title": title, "decision": dict(decision or {}), **report.to_dict()}

    written = []
    md = _markdown(title, sections)
    written.append(_atomic_write(folder / REPORT_MD, md.encode("utf-8")))
    page = _html(title, sections, {p.name: p for p in images})
    written.append(_atomic_write(folder / REPORT_HTML, page.encode("utf-8")))
    text = json.dumps(document, indent=2, default=str) + "\n"
    written.append(_atomic_write(folder / REPORT_JSON, text.encode("utf-8")))
    return [*written, *images]


def _atomic_write(path: Path, data: bytes) -> Path:
    atomic_write_bytes(path, data)
    return path


# ----------------------------------------------------------------------------- content


def _sections(  # noqa: C901, PLR0915 - the report sections in reading order, one by one
    report: ValidationReport, decision: Mapping[str, Any] | None, images: Sequence[str]
) -> list[_Section]:
    m = report.metrics
    window = report.window
    comparison = report.comparison
    prod = comparison.production if comparison else {}
    base_up = report.baselines["always_up"]
    base_y = report.baselines["yesterday_direction"]
    ci = report.accuracy_ci
    sections = []

    head = _Section("Summary")
    if decision:
        head.paragraphs.append(f"**Decision:** {decision.get('reason', '')}")
        for note in decision.get("notes", ()):
            head.paragraphs.append(note)
    head.paragraphs.append(
        f"Backtest {window.get('first_scored_date')} .. {window.get('last_scored_date')}: "
        f"{m['n_samples']:,} rows over {window.get('n_days')} trading days"
        + (f", after training data ending {window['train_end']}" if window.get("train_end") else "")
        + f" and a purge gap of {window.get('purge_gap_days')} trading day(s). "
        f"Label horizon {report.horizon} day(s)"
        + (f", dead band {report.dead_band:g}" if report.dead_band else "")
        + "."
    )
    head.paragraphs.append(
        f"Accuracy {pct(m['accuracy'])}, {level_text(ci['level'])} CI {pct(ci['low'])} .. "
        f"{pct(ci['high'])} ({ci['method']}); Wilson interval {pct(ci['wilson_low'])} .. "
        f"{pct(ci['wilson_high'])} (assumes independent rows). Always-up scores "
        f"{pct(base_up['accuracy'])} and yesterday's direction {pct(base_y['accuracy'])} "
        "on the same rows."
    )
    head.paragraphs.append(
        f"Effective sample size: {report.independent_outcomes}. Labels {report.horizon} "
        "day(s) ahead overlap and the rows of one day move with the market, so the rows "
        "carry less evidence than their number suggests; the intervals are as wide as that "
        "requires."
    )
    sections.append(head)

    metrics = _Section("Metrics vs thresholds")
    rows = []
    prod_label = f"production ({comparison.n_common:,} rows)" if comparison else "production"
    for name, label in _METRIC_LABELS.items():
        check = report.thresholds.get(name)
        rows.append(
            [
                label,
                metric_cell(name, m.get(name)),
                metric_cell(name, prod.get(name)) if comparison else "-",
                metric_cell(name, base_up.get(name)) if name in base_up else "-",
                metric_cell(name, base_y.get(name)) if name in base_y else "-",
                pct(check.threshold) if check else "-",
                ("pass" if check.passed else "FAIL") if check else "",
            ]
        )
    metrics.table = (
        [
            "metric",
            "new model" if report.subject == "new model" else "model",
            prod_label,
            "always up",
            "yesterday's direction",
            "threshold",
            "",
        ],
        rows,
    )
    metrics.after.append(
        f"n = {m['n_samples']:,} rows; confusion: {m['tp']:,} true up, {m['fp']:,} false up, "
        f"{m['tn']:,} true down, {m['fn']:,} false down; the model called "
        f"{pct(m['predicted_up_rate'])} of rows up, {pct(m['up_rate'])} went up."
    )
    metrics.images = [n for n in images if n in ("confusion.png", "calibration.png")]
    sections.append(metrics)

    if comparison:
        comp = _Section(
            f"Champion vs challenger (production {comparison.production_version}, "
            f"{comparison.n_common:,} common rows)"
        )
        comp.table = (
            ["metric", "new model", "production", "difference"],
            [
                [
                    label,
                    metric_cell(n, comparison.new.get(n)),
                    metric_cell(n, prod.get(n)),
                    points(comparison.difference.get(n))
                    if n in ("accuracy", "precision", "recall", "f1")
                    else (
                        "-"
                        if comparison.difference.get(n) is None
                        else f"{comparison.difference[n]:+.4f}"
                    ),
                ]
                for n, label in _METRIC_LABELS.items()
            ],
        )
        dci_low, dci_high = comparison.primary_difference_ci
        mc = comparison.mcnemar
        comp.after.append(
            f"Primary metric {comparison.primary_metric}: difference "
            f"{_diff(comparison.primary_metric, comparison.primary_difference)}, "
            f"{level_text(comparison.primary_difference_level)} CI "
            f"{_diff(comparison.primary_metric, dci_low)} .. "
            f"{_diff(comparison.primary_metric, dci_high)} "
            f"({comparison.primary_difference_method}): {comparison.verdict}."
        )
        comp.after.append(
            f"McNemar mid-p on accuracy: p {p_value(mc['p_value'])} (only the new model right on "
            f"{mc['new_only_correct']:,} rows, only production right on "
            f"{mc['production_only_correct']:,})."
        )
        tr = comparison.trading
        comp.after.append(
            f"Trading view on these rows: new model {pct(tr['new_cumulative_return'])} "
            f"(Sharpe {num(tr['new_sharpe'], 2)}), production "
            f"{pct(tr['production_cumulative_return'])} (Sharpe {num(tr['production_sharpe'], 2)})."
        )
        sections.append(comp)

    trading = report.trading
    trade = _Section(f"Trading view (cost {trading.cost_per_trade:.4%} per unit traded)")
    s, b = trading.strategy, trading.buy_and_hold
    trade.table = (
        ["", "model (long when up)", "buy and hold"],
        [
            ["cumulative return", pct(s["cumulative_return"]), pct(b["cumulative_return"])],
            ["annualised Sharpe", num(s["sharpe"], 2), num(b["sharpe"], 2)],
            [
                f"Sharpe, {level_text(_level_of(trading))} CI",
                interval_text(trading.sharpe_ci),
                interval_text(trading.buy_and_hold_sharpe_ci),
            ],
            ["maximum drawdown", pct(s["max_drawdown"]), pct(b["max_drawdown"])],
            ["hit rate (days in market with a gain)", pct(s["hit_rate"]), pct(b["hit_rate"])],
            ["turnover (mean daily)", pct(s["turnover"]), pct(b["turnover"])],
            ["exposure (mean position)", pct(s["exposure"]), pct(b["exposure"])],
            ["trading days", str(s["n_days"]), str(b["n_days"])],
        ],
    )
    difference = trading.sharpe_difference
    trade.after.append(
        "Sharpe difference, model minus buy and hold: "
        + ("-" if difference is None else f"{difference:+.2f}")
        + (
            f", {level_text(trading.sharpe_difference_ci.level)} CI "
            f"{interval_text(trading.sharpe_difference_ci, signed=True)} (paired: the same "
            "resampled days for both)"
            if trading.sharpe_difference_ci
            else ""
        )
        + f". Over {s['n_days']} trading days a Sharpe ratio is known only roughly; an "
        "interval that contains 0 (or a difference that does) is no evidence of an edge."
    )
    if trading.sharpe_ci:
        trade.after.append(f"Sharpe intervals: {trading.sharpe_ci.method}.")
    trade.after.append(f"How: {trading.to_dict()['method']}.")
    trade.images = [n for n in images if n == "equity.png"]
    sections.append(trade)

    per = _Section("Per ticker")
    per.table = (
        [
            "ticker",
            "rows",
            "accuracy",
            "always up",
            "yesterday's direction",
            "precision",
            "recall",
            "ROC AUC",
            "strategy",
            "buy and hold",
        ],
        [
            [
                r["ticker"],
                f"{r['n_samples']:,}",
                pct(r["accuracy"]),
                pct(r["always_up_accuracy"]),
                pct(r["yesterday_direction_accuracy"]),
                pct(r["precision"]),
                pct(r["recall"]),
                num(r["roc_auc"], 3),
                pct(r.get("strategy_return")),
                pct(r.get("buy_and_hold_return")),
            ]
            for r in report.per_ticker
        ],
    )
    sections.append(per)

    if report.skill is not None:
        sections.append(_skill_section(report.skill))

    calib = _Section("Calibration")
    if report.uncalibrated is not None:
        before = report.uncalibrated
        calib.paragraphs.append(
            f"P(up) is calibrated ({before['method']}, fitted on the last purged fold of the "
            "training part). On the backtest: log loss "
            f"{num(before['log_loss'])} before, {num(m.get('log_loss'))} after; Brier score "
            f"{num(before['brier'])} before, {num(m.get('brier'))} after. The table is after."
        )
    else:
        calib.paragraphs.append("P(up) is the model's own (not calibrated).")
    calib.table = (
        ["P(up) bin", "rows", "mean predicted", "observed up"],
        [
            [
                f"{c['low']:.1f} .. {c['high']:.1f}",
                f"{c['n_samples']:,}",
                pct(c["mean_predicted"]),
                pct(c["fraction_up"]),
            ]
            for c in report.calibration
        ],
    )
    sections.append(calib)

    if report.feature_importance:
        top = sorted(report.feature_importance.items(), key=lambda kv: kv[1], reverse=True)
        imp = _Section(f"Feature importance (top {min(_TOP_FEATURES, len(top))})")
        imp.table = (["feature", "importance"], [[k, num(v)] for k, v in top[:_TOP_FEATURES]])
        imp.images = [n for n in images if n == "importance.png"]
        sections.append(imp)

    notes = _Section("Notes")
    notes.paragraphs.extend(f"Warning: {w}" for w in report.warnings)
    if comparison is None and report.subject == "new model":
        notes.paragraphs.append(
            "No production model was compared; the thresholds and the skill gate decide."
        )
    elif comparison is not None and comparison.note:
        notes.paragraphs.append(f"Production: {comparison.note}.")
    notes.paragraphs.extend(report.notes)
    sections.append(notes)
    return sections


def _skill_section(skill: SkillEvidence) -> _Section:
    """The model against the better naive baseline and the training base rate."""
    from marketpredictor_train.validation.backtest import skill_score as _skill_score

    sec = _Section("Skill over the naive baselines")
    low, high = skill.difference_ci
    name = skill.baseline.replace("_", " ")
    sec.table = (
        ["", "model", "reference", "difference or skill"],
        [
            [
                f"{skill.metric} vs {name}",
                metric_cell(skill.metric, skill.model_value),
                metric_cell(skill.metric, skill.baseline_value),
                f"{_diff(skill.metric, skill.difference)} ({skill.level:.0%} CI "
                f"{_diff(skill.metric, low)} .. {_diff(skill.metric, high)})",
            ],
            [
                f"log loss vs base rate {pct(skill.base_rate)}",
                num(skill.log_loss),
                num(skill.base_rate_log_loss),
                pct(_skill_score(skill.log_loss, skill.base_rate_log_loss)),
            ],
            [
                "Brier score vs base rate",
                num(skill.brier),
                num(skill.base_rate_brier),
                pct(_skill_score(skill.brier, skill.base_rate_brier)),
            ],
        ],
    )
    sec.after.append(
        f"On the same {skill.n_rows:,} rows. Skill means beating the better naive baseline "
        "with the interval's lower bound above 0, and forecasting better than a constant "
        "probability equal to the training base rate (skill score above 0)."
    )
    return sec


def _diff(metric: str, value: Any) -> str:
    if metric in ("accuracy", "precision", "recall", "f1"):
        return points(value)
    return "-" if value is None else f"{float(value):+.4f}"


# ----------------------------------------------------------------------------- formats


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_literal(text: str) -> str:
    """Text shown as it is: Markdown's emphasis, code, link and HTML characters escaped."""
    return "".join(f"\\{c}" if c in _MD_SPECIAL else c for c in text)


_MD_SPECIAL = set("\\`*_[]<>|#")


def _markdown(title: str, sections: list[_Section]) -> str:
    lines = [f"# {_md_literal(title)}", ""]
    for sec in sections:
        lines += [f"## {sec.title}", ""]
        for para in sec.paragraphs:
            lines += [para, ""]
        if sec.table:
            headers, rows = sec.table
            lines.append("| " + " | ".join(_md_escape(h) for h in headers) + " |")
            lines.append("|" + "|".join("---" for _ in headers) + "|")
            for row in rows:
                lines.append("| " + " | ".join(_md_escape(c) for c in row) + " |")
            lines.append("")
        for para in sec.after:
            lines += [para, ""]
        if sec.images:
            lines += ["Plots (in report.html): " + ", ".join(sec.images), ""]
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
td.pass { color: #17692c; } td.FAIL { color: #b00020; font-weight: bold; }
img { max-width: 100%; margin: .5rem 1rem .5rem 0; border: 1px solid #eee; }
"""


def _inline_md(text: str) -> str:
    escaped = html.escape(text)
    parts = escaped.split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def _html(title: str, sections: list[_Section], images: Mapping[str, Path]) -> str:
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for sec in sections:
        out.append(f"<h2>{html.escape(sec.title)}</h2>")
        out.extend(f"<p>{_inline_md(p)}</p>" for p in sec.paragraphs)
        if sec.table:
            headers, rows = sec.table
            out.append("<table><thead><tr>")
            out.extend(f"<th>{html.escape(h)}</th>" for h in headers)
            out.append("</tr></thead><tbody>")
            for row in rows:
                cells = "".join(
                    f'<td class="{html.escape(c)}">{html.escape(c)}</td>'
                    if c in ("pass", "FAIL")
                    else f"<td>{html.escape(c)}</td>"
                    for c in row
                )
                out.append(f"<tr>{cells}</tr>")
            out.append("</tbody></table>")
        out.extend(f"<p>{_inline_md(p)}</p>" for p in sec.after)
        for name in sec.images:
            data = base64.b64encode(images[name].read_bytes()).decode("ascii")
            out.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">')
    out.append("</body></html>")
    return "\n".join(out)


# ----------------------------------------------------------------------------- plots


def save_png(fig: Figure, path: Path) -> Path:
    """Draw ``fig`` with the Agg canvas (no display needed) into the PNG ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    return path


def _plots(report: ValidationReport, folder: Path) -> list[Path]:  # noqa: PLR0915 - four small plots drawn in sequence
    from matplotlib.figure import Figure

    written: list[Path] = []

    def save(fig: Figure, name: str) -> None:
        written.append(save_png(fig, folder / name))

    trading = report.trading
    if trading.dates:
        fig = Figure(figsize=(8, 4))
        ax = fig.add_subplot()
        ax.plot(trading.dates, trading.strategy_equity, label="model: long when up, else flat")
        ax.plot(trading.dates, trading.buy_and_hold_equity, label="buy and hold", alpha=0.8)
        ax.set_title(f"Equity over the backtest (cost {trading.cost_per_trade:.4%} per trade)")
        ax.set_ylabel("growth of 1")
        ax.legend(loc="best")
        fig.autofmt_xdate()
        save(fig, "equity.png")

    m = report.metrics
    fig = Figure(figsize=(4, 3.6))
    ax = fig.add_subplot()
    cells = [[m["tn"], m["fp"]], [m["fn"], m["tp"]]]
    ax.imshow(cells, cmap="Blues")
    darkest = max(max(row) for row in cells) or 1
    for i in range(2):
        for j in range(2):
            dark = cells[i][j] > darkest / 2
            ax.text(
                j,
                i,
                f"{cells[i][j]:,}",
                ha="center",
                va="center",
                color="white" if dark else "black",
            )
    ax.set_xticks([0, 1], ["down", "up"])
    ax.set_yticks([0, 1], ["down", "up"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"Confusion matrix (n = {m['n_samples']:,})")
    save(fig, "confusion.png")

    if report.calibration:
        fig = Figure(figsize=(4.5, 4))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
        ax.plot(
            [c["mean_predicted"] for c in report.calibration],
            [c["fraction_up"] for c in report.calibration],
            marker="o",
            label="model",
        )
        ax.set_xlabel("predicted P(up)")
        ax.set_ylabel("observed share up")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title("Calibration")
        ax.legend(loc="upper left")
        save(fig, "calibration.png")

    if report.feature_importance:
        top = sorted(report.feature_importance.items(), key=lambda kv: kv[1], reverse=True)
        top = top[:_TOP_FEATURES][::-1]
        fig = Figure(figsize=(6, 0.3 * len(top) + 1))
        ax = fig.add_subplot()
        ax.barh([k for k, _ in top], [v for _, v in top])
        ax.set_title("Feature importance")
        save(fig, "importance.png")
    return written
