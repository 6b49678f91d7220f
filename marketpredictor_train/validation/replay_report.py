"""The report of `mptrain backtest`: the policies side by side over every step, their
equity curves and the deployed model's accuracy over time, as Markdown, a self-contained
HTML page (the plots embedded), the PNG plots and report.json, like the validation
report (:mod:`.report`), from one list of sections."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from marketpredictor_train.validation.report import (
    REPORT_HTML,
    REPORT_JSON,
    REPORT_MD,
    _atomic_write,
    _html,
    _markdown,
    _Section,
    num,
    pct,
    save_png,
)

POLICY_LABELS = {
    "gated": "gated (train's gate)",
    "always_retrain": "always retrain",
    "never_retrain": "never retrain",
    "always_up": "always up",
    "yesterday": "yesterday's direction",
}
# Steps averaged in the accuracy-over-time plot (about a quarter of weekly steps).
_ROLLING = 13
# Drawn last and boldest: the gated policy must stay visible where it equals another.
_STYLES: dict[str, dict[str, Any]] = {
    "gated": {"color": "#1f3a93", "linewidth": 2.4, "zorder": 5},
    "always_retrain": {"color": "#e67e22", "linewidth": 1.3, "zorder": 3},
    "never_retrain": {"color": "#27ae60", "linewidth": 1.3, "zorder": 3},
    "always_up": {"color": "#7f8c8d", "linewidth": 1.3, "linestyle": "--", "zorder": 4},
    "yesterday": {"color": "#8e44ad", "linewidth": 1.0, "zorder": 2},
}


def write_backtest_report(  # noqa: PLR0913 - the numbers of one backtest and its notes
    folder: Path,
    *,
    steps: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    curves: Mapping[str, tuple[Sequence[Any], Sequence[float]]],
    window: Mapping[str, Any],
    notes: Sequence[str] = (),
) -> list[Path]:
    """Write report.md, report.html, report.json and the plots into ``folder``; returns
    the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images = _plots(folder, steps, curves)
    title = (
        f"Backtest report - {window.get('source')}, {window.get('start')} .. "
        f"{window.get('end')}, retrained every {window.get('every')}"
    )
    sections = _sections(steps, summary, window, notes, [p.name for p in images])
    written = [
        _atomic_write(folder / REPORT_MD, _markdown(title, sections).encode("utf-8")),
        _atomic_write(
            folder / REPORT_HTML,
            _html(title, sections, {p.name: p for p in images}).encode("utf-8"),
        ),
    ]
    document = {"title": title, "window": dict(window), "summary": summary, "steps": steps}
    text = json.dumps(document, indent=2, default=str) + "\n"
    written.append(_atomic_write(folder / REPORT_JSON, text.encode("utf-8")))
    return [*written, *images]


def _ci(bounds: Sequence[float] | None, *, signed: bool = False) -> str:
    if not bounds:
        return "-"
    low, high = bounds
    if signed:
        return f"{low * 100:+.2f} .. {high * 100:+.2f} pts"
    return f"{low:.2%} .. {high:.2%}"


def _sections(
    steps: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    window: Mapping[str, Any],
    notes: Sequence[str],
    images: Sequence[str],
) -> list[_Section]:
    policies = summary["policies"]
    diff = summary["gated_minus_always_up"]
    level = f"{float(summary.get('level', 0.95)) * 100:g}%"
    low, high = diff["ci"]
    verdict = "within noise" if low <= 0 <= high else ("better" if low > 0 else "worse")
    n_rows = policies["gated"]["n_rows"]
    head = _Section(
        "Summary",
        paragraphs=[
            f"**{summary['steps']} steps**, retrained every {window.get('every')} from "
            f"{window.get('start')} to {window.get('end')} on {len(window.get('tickers', []))} "
            f"tickers; each step trained as mptrain train would have on the data known "
            f"then and was scored on the rows up to the next step ({n_rows:,} rows in all). "
            f"The gate promoted **{summary['promotions']}** of them.",
            f"Gated minus always-up accuracy: **{diff['difference'] * 100:+.2f} pts** "
            f"({level} CI {_ci(diff['ci'], signed=True)}, paired by day): {verdict}.",
        ],
        table=(
            [
                "Policy",
                "Accuracy",
                f"{level} CI",
                "Log loss",
                "Return",
                "Sharpe",
                "Max drawdown",
            ],
            [
                [
                    POLICY_LABELS[name],
                    pct(p["accuracy"]),
                    _ci(p["accuracy_ci"]),
                    num(p["log_loss"]),
                    pct(p["cumulative_return"]),
                    num(p["sharpe"], 2),
                    pct(p["max_drawdown"]),
                ]
                for name, p in policies.items()
            ],
        ),
        after=[
            "Accuracy intervals sum each trading day's rows and allow for overlapping "
            "labels (day blocks); returns are the trading view's (long when the policy "
            "says up, flat otherwise, after costs). Log loss is shown for the policies "
            "with probabilities only."
        ],
    )
    plots = _Section("Equity and accuracy over time", images=list(images))
    table = _Section(
        "Steps",
        paragraphs=[
            "Per step: the gate's decision on the model trained that day, the model in "
            "production after it (named after the day it was trained), and each policy's "
            "accuracy on the rows up to the next step."
        ],
        table=(
            ["Step", "Gate", "Champion", "Gated", "Retrain", "Never", "Up", "Yesterday"],
            [
                [
                    str(s["date"]),
                    "promoted" if s["promoted"] else ("passed" if s["passed"] else "kept"),
                    s["champion_version"] or "-",
                    *(pct(s["policies"][name]["accuracy"], 1) for name in POLICY_LABELS),
                ]
                for s in steps
            ],
        ),
    )
    sections = [head, plots, table]
    if notes:
        sections.append(_Section("Notes", paragraphs=list(notes)))
    return sections


def _plots(
    folder: Path,
    steps: Sequence[Mapping[str, Any]],
    curves: Mapping[str, tuple[Sequence[Any], Sequence[float]]],
) -> list[Path]:
    import numpy as np
    from matplotlib.figure import Figure

    written: list[Path] = []

    def save(fig: Figure, name: str) -> None:
        written.append(save_png(fig, folder / name))

    fig = Figure(figsize=(9, 4.2))
    ax = fig.add_subplot()
    labels = legend_labels({name: equity for name, (_, equity) in curves.items()})
    for name, (days, equity) in curves.items():
        ax.plot(list(days), list(equity), label=labels[name], **_STYLES[name])
    ax.set_title("Equity of each policy (long when it says up, after costs)")
    ax.set_ylabel("growth of 1")
    ax.legend(loc="best", fontsize="small")
    fig.autofmt_xdate()
    save(fig, "equity.png")

    days = [np.datetime64(str(s["date"])) for s in steps]
    if days:
        fig = Figure(figsize=(9, 4.2))
        ax = fig.add_subplot()
        rolling = {
            name: _rolling(
                np.array(
                    [
                        np.nan
                        if s["policies"][name]["accuracy"] is None
                        else s["policies"][name]["accuracy"]
                        for s in steps
                    ],
                    dtype=float,
                )
            )
            for name in ("gated", "always_retrain", "never_retrain", "always_up")
        }
        labels = legend_labels(rolling)
        for name, values in rolling.items():
            ax.plot(days, values, label=labels[name], **_STYLES[name])
        # dotted and light: not to be read as always-up's dashed grey line
        ax.axhline(0.5, color="#b0b0b0", linestyle=":", linewidth=1, label="50% (a coin)")
        promoted = [d for d, s in zip(days, steps, strict=True) if s["promoted"]]
        if promoted:
            ax.plot(
                promoted,
                [ax.get_ylim()[0]] * len(promoted),
                linestyle="none",
                marker="^",
                color="green",
                label="promotion",
            )
        window = min(_ROLLING, len(days))
        ax.set_title(
            f"Accuracy until the next step of the model in production "
            f"(rolling mean of up to {window} steps)"
        )
        ax.set_ylabel("accuracy")
        ax.legend(loc="best", fontsize="small")
        fig.autofmt_xdate()
        save(fig, "accuracy.png")
    return written


def legend_labels(lines: Mapping[str, Sequence[float]]) -> dict[str, str]:
    """Each policy's legend label; a line equal to one drawn before it (a policy that
    made the same calls, so its line lies under the other) says so: "always retrain
    (same as gated)"."""
    import numpy as np

    labels: dict[str, str] = {}
    drawn: list[tuple[str, np.ndarray]] = []
    for name, values in lines.items():
        line = np.asarray(values, dtype=float)
        twin = next(
            (
                other
                for other, seen in drawn
                if seen.shape == line.shape and np.array_equal(seen, line, equal_nan=True)
            ),
            None,
        )
        labels[name] = POLICY_LABELS[name]
        if twin is not None:
            labels[name] += f" (same as {POLICY_LABELS[twin].split(' (')[0]})"
        drawn.append((name, line))
    return labels


def _rolling(values: Any) -> Any:
    import numpy as np

    out = np.full(values.shape, np.nan)
    for i in range(values.size):
        chunk = values[max(0, i - _ROLLING + 1) : i + 1]
        if np.isfinite(chunk).any():
            out[i] = np.nanmean(chunk)
    return out
