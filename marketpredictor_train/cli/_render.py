"""Rendering of results for people: Rich tables on stderr, beside the logs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marketpredictor_train.cli import _console

if TYPE_CHECKING:
    from marketpredictor_train.results import (
        Interval,
        RegistryStatus,
        TrainResult,
        ValidateResult,
        ValidationReport,
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def render_train_result(result: TrainResult) -> None:
    console = _console.err_console()
    if result.validation is None:
        console.print(
            "[yellow]Validation skipped[/] (--skip-validation): no backtest metrics.",
            highlight=False,
        )
    else:
        _render_validation(result.validation)
    colour = (
        "green"
        if result.promoted
        else ("yellow" if result.dry_run or result.skipped_validation else "red")
    )
    console.print(f"[{colour}]{result.reason}[/]", highlight=False)
    if result.version:
        console.print(
            f"Saved version {result.version}" + (" (production)" if result.promoted else ""),
            highlight=False,
        )
    if result.refit:
        console.print(
            "Refit on every row after validation: the metrics above are the validated "
            "model's, before the refit.",
            highlight=False,
        )
    if result.report_dir:
        console.print(f"Report: {result.report_dir}/report.html", highlight=False)
    _render_registry(result.registry)
    for warning in result.warnings:
        console.print(f"[yellow]Warning:[/] {warning}", highlight=False)
    console.print(timing_line(result.duration_s, result.timings), highlight=False)


def timing_line(duration_s: float, timings: dict[str, float]) -> str:
    """``Total 16.1 s: data 0.3 s, features 1.1 s, fit 7.5 s, ...`` (steps in run order)."""
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
    return f"Total {duration_s:.1f} s" + (f": {steps}" if steps else "")


def _render_registry(registry: RegistryStatus | None) -> None:
    if registry is None or registry.champion_version is None:
        return
    _console.err_console().print(
        f"MLflow: {registry.uri} is {registry.registered_model} version "
        f"{registry.champion_version} (mptrain version {registry.production})"
        + (", moved now." if registry.moved else "."),
        highlight=False,
    )


def render_validate_result(result: ValidateResult) -> None:
    console = _console.err_console()
    _render_validation(result.validation)
    colour = "green" if result.passed else "red"
    console.print(f"[{colour}]{result.reason}[/]", highlight=False)
    if result.report_dir:
        console.print(f"Report: {result.report_dir}/report.html", highlight=False)
    _render_registry(result.registry)
    for warning in result.warnings:
        console.print(f"[yellow]Warning:[/] {warning}", highlight=False)


_SEED = ("accuracy", "precision", "recall", "f1")
_OTHER = (("roc_auc", "ROC AUC"), ("log_loss", "log loss"), ("brier", "Brier score"))


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"


def _render_validation(validation: ValidationReport) -> None:
    """The backtest table (metric, model, production, always-up baseline, threshold,
    pass/fail as the gate decided) and one line each for the interval, baselines,
    comparison and trading."""
    from rich.table import Table

    console = _console.err_console()
    metrics = validation.metrics
    window = validation.window
    baseline = validation.baselines["always_up"]
    comparison = validation.comparison
    prod = comparison.production if comparison else {}
    table = Table(
        title=f"Backtest {window.get('first_scored_date')} .. {window.get('last_scored_date')} "
        f"({metrics['n_samples']:,} rows, {window.get('n_days')} days)"
    )
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column(
        f"production ({comparison.n_common:,} rows)" if comparison else "production",
        justify="right",
    )
    table.add_column("always up", justify="right")
    table.add_column("threshold", justify="right")
    table.add_column("", justify="center")
    for name in _SEED:
        check = validation.thresholds.get(name)
        table.add_row(
            name,
            _pct(metrics.get(name)),
            _pct(prod.get(name)),
            _pct(baseline.get(name)),
            _pct(check.threshold if check else None),
            "" if check is None else ("[green]pass[/]" if check.passed else "[red]fail[/]"),
        )
    for name, label in _OTHER:
        table.add_row(label, _num(metrics.get(name)), _num(prod.get(name)), "-", "-", "")
    console.print(table)

    ci = validation.accuracy_ci
    yesterday = validation.baselines["yesterday_direction"]
    console.print(
        f"Accuracy {_level(ci['level'])} CI {_pct(ci['low'])} .. {_pct(ci['high'])}: "
        + validation.independent_outcomes
        + f". Yesterday's direction scores {_pct(yesterday['accuracy'])}.",
        highlight=False,
    )
    skill = validation.skill
    if skill is not None:
        low, high = skill.difference_ci
        k, unit = (1, "") if skill.metric == "roc_auc" else (100, " pts")
        console.print(
            f"Skill vs {skill.baseline.replace('_', ' ')}: {skill.metric} "
            f"{(skill.model_value - skill.baseline_value) * k:+.2f}{unit} "
            f"({skill.level:.0%} CI {low * k:+.2f} .. {high * k:+.2f}); log loss "
            f"{skill.log_loss:.4f} vs {skill.base_rate_log_loss:.4f} for the base rate "
            f"({skill.base_rate:.1%} up).",
            highlight=False,
        )
    before = validation.uncalibrated
    if before is not None:
        console.print(
            f"Calibrated ({before['method']}): log loss {before['log_loss']:.4f} -> "
            f"{_num(metrics.get('log_loss'))}, Brier {before['brier']:.4f} -> "
            f"{_num(metrics.get('brier'))} on the backtest.",
            highlight=False,
        )
    if comparison and not comparison.comparable:
        console.print(f"Production not comparable: {comparison.note}.", highlight=False)
    elif comparison:
        primary = comparison.primary_metric
        low, high = comparison.primary_difference_ci
        scale = 100 if primary in _SEED else 1
        unit = " pts" if primary in _SEED else ""
        console.print(
            f"vs production {comparison.production_version}: {primary} "
            f"{(comparison.primary_difference or 0) * scale:+.2f}{unit} "
            f"({_level(comparison.level)} CI {low * scale:+.2f} .. "
            f"{high * scale:+.2f}{unit}, {comparison.verdict}; "
            f"McNemar p {_p(comparison.mcnemar['p_value'])})",
            highlight=False,
        )
    trading = validation.trading
    strat, hold = trading.strategy, trading.buy_and_hold
    console.print(
        f"Trading (cost {trading.cost_per_trade:.2%}): model {_pct(strat['cumulative_return'])}"
        f", Sharpe {_num2(strat['sharpe'])}{_ci2(trading.sharpe_ci)}, max drawdown "
        f"{_pct(strat['max_drawdown'])}; buy and hold {_pct(hold['cumulative_return'])}, "
        f"Sharpe {_num2(hold['sharpe'])}{_ci2(trading.buy_and_hold_sharpe_ci)}; Sharpe "
        f"difference {_signed2(trading.sharpe_difference)}"
        f"{_ci2(trading.sharpe_difference_ci, signed=True)}.",
        highlight=False,
    )


def _p(value: float) -> str:
    return "< 0.001" if value < 1e-3 else f"= {value:.3f}"


def _num2(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}"


def _signed2(value: Any) -> str:
    return "-" if value is None else f"{float(value):+.2f}"


def _level(level: float) -> str:
    return f"{level * 100:g}%"


def _ci2(interval: Interval | None, *, signed: bool = False) -> str:
    """' (95% CI -1.20 .. 3.40)', or nothing when there is no interval."""
    if interval is None:
        return ""
    fmt = _signed2 if signed else _num2
    return f" ({_level(interval.level)} CI {fmt(interval.low)} .. {fmt(interval.high)})"
