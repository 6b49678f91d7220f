"""`mptrain backtest`: replay the retrain-and-promote policy over past years against
always retraining, never retraining, always up and yesterday's direction."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from marketpredictor_train.cli._app import app
from marketpredictor_train.cli._common import (
    BacktestMonthsOpt,
    CalibrationOpt,
    ChampionMarginOpt,
    ConfigOpt,
    CostPerTradeOpt,
    DeadBandOpt,
    DeviceOpt,
    EmbargoDaysOpt,
    GateLevelOpt,
    HorizonOpt,
    LogLevelOpt,
    LogsDirOpt,
    MinAccuracyOpt,
    MinF1Opt,
    MinPrecisionOpt,
    MinRecallOpt,
    ModelsDirOpt,
    ModelTypeOpt,
    OfflineOpt,
    OutputJsonOpt,
    PeriodOpt,
    PrimaryMetricOpt,
    QuietOpt,
    ReportDirOpt,
    SeedOpt,
    SkillGateOpt,
    SourceOpt,
    TickersOpt,
    UniverseOpt,
    run_reported,
    settings_from,
    setup_logging,
)

if TYPE_CHECKING:
    from marketpredictor_train.results import BacktestResult

BACKTEST_CACHE = "backtest"
_LABELS = {
    "gated": "Gated",
    "always_retrain": "Always retrain",
    "never_retrain": "Never retrain",
    "always_up": "Always up",
    "yesterday": "Yesterday",
}


@app.command("backtest")
def backtest(
    ctx: typer.Context,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            metavar="DATE",
            help="First retraining day (YYYY-MM-DD) [default: 2 years before the last date].",
        ),
    ] = None,
    every: Annotated[
        str,
        typer.Option(
            "--every",
            metavar="INTERVAL",
            help="Retraining interval: a number and d (days), w (weeks) or m (months), "
            "from 1d to 3m [default: 1w].",
            show_default=False,
        ),
    ] = "1w",
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes fitting steps in parallel [default: the usable cores].",
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            file_okay=False,
            help="Cache folder: the market data, and the finished backtest steps under "
            "DIR/backtest/ [default: steps in <models-dir>-backtest-cache/].",
        ),
    ] = None,
    period: PeriodOpt = None,
    min_accuracy: MinAccuracyOpt = None,
    min_precision: MinPrecisionOpt = None,
    min_recall: MinRecallOpt = None,
    min_f1: MinF1Opt = None,
    model_type: ModelTypeOpt = None,
    source: SourceOpt = None,
    tickers: TickersOpt = None,
    horizon: HorizonOpt = None,
    offline: OfflineOpt = None,
    device: DeviceOpt = None,
    seed: SeedOpt = None,
    backtest_months: BacktestMonthsOpt = None,
    embargo_days: EmbargoDaysOpt = None,
    dead_band: DeadBandOpt = None,
    primary_metric: PrimaryMetricOpt = None,
    skill_gate: SkillGateOpt = None,
    gate_level: GateLevelOpt = None,
    champion_margin: ChampionMarginOpt = None,
    calibration: CalibrationOpt = None,
    universe: UniverseOpt = None,
    cost_per_trade: CostPerTradeOpt = None,
    report_dir: ReportDirOpt = None,
    models_dir: ModelsDirOpt = None,
    logs_dir: LogsDirOpt = None,
    log_level: LogLevelOpt = None,
    quiet: QuietOpt = None,
    config: ConfigOpt = None,
    output_json: OutputJsonOpt = None,
) -> None:
    """Replay weekly retraining with train's promotion gate over past years, against
    always retraining, never retraining, always up and yesterday's direction; the model
    store is never written. Exit 0: done; 1: too little data or a fit failed;
    3: configuration error (bad --every, --start after the data)."""

    def run() -> BacktestResult:
        settings = settings_from(ctx, skip=("start", "every", "workers"))
        setup_logging(settings)
        from marketpredictor_train import api
        from marketpredictor_train.cli._progress import progress_bars

        with progress_bars(quiet=settings.quiet) as progress:
            return api.backtest(
                settings,
                start=start,
                every=every,
                workers=workers,
                cache_dir=None if cache_dir is None else cache_dir / BACKTEST_CACHE,
                progress=progress,
            )

    result = run_reported("backtest", output_json, run, render_backtest_result)
    raise typer.Exit(result.exit_code)


def _pct(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{float(value):.{digits}%}"


def render_backtest_result(result: BacktestResult) -> None:
    """The steps and the policies' summary, for an 80-column terminal."""
    from rich import box
    from rich.table import Table

    from marketpredictor_train.cli._console import err_console

    console = err_console()
    steps = Table(
        title="Backtest steps (accuracy on the rows up to the next step)",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        title_justify="left",
    )
    for name, justify in (
        ("Step", "left"),
        ("Gate", "left"),
        ("Champion", "left"),
        ("Gated", "right"),
        ("Retrain", "right"),
        ("Never", "right"),
        ("Up", "right"),
        ("Yest.", "right"),
    ):
        steps.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for step in result.steps:
        gate = "promoted" if step["promoted"] else ("passed" if step["passed"] else "kept")
        colour = "green" if step["promoted"] else "dim"
        steps.add_row(
            step["date"],
            f"[{colour}]{gate}[/]",
            step["champion_version"] or "-",
            *(_pct(step["policies"][name]["accuracy"]) for name in _LABELS),
        )
    console.print(steps)

    summary = result.summary
    table = Table(
        title=f"Summary: {summary['steps']} steps, {summary['promotions']} promotions",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        title_justify="left",
    )
    for name in ("Policy", "Acc.", "95% CI", "LogLoss", "Return", "Sharpe", "MaxDD"):
        table.add_column(name, justify="left" if name == "Policy" else "right", no_wrap=True)
    for name, label in _LABELS.items():
        p = summary["policies"][name]
        low, high = p["accuracy_ci"]
        table.add_row(
            label,
            _pct(p["accuracy"], 2),
            f"{low * 100:.1f}-{high:.1%}",
            "-" if p["log_loss"] is None else f"{p['log_loss']:.4f}",
            _pct(p["cumulative_return"]),
            "-" if p["sharpe"] is None else f"{p['sharpe']:.2f}",
            _pct(p["max_drawdown"]),
        )
    console.print(table)
    differences = summary.get("gated_minus") or {"always_up": summary["gated_minus_always_up"]}
    console.print("Gated minus (accuracy, 95% CI paired by day):", highlight=False)
    for name, diff in differences.items():
        low, high = diff["ci"]
        verdict = "within noise" if low <= 0 <= high else ("better" if low > 0 else "worse")
        console.print(
            f"  {_LABELS[name].lower():<15}{diff['difference'] * 100:+6.2f} pts "
            f"({low * 100:+.2f} .. {high * 100:+.2f}): {verdict}",
            highlight=False,
        )
    console.print(
        f"Steps fitted: {result.computed_steps}, from the cache: {result.cached_steps} "
        f"({result.cache_dir})",
        highlight=False,
    )
    for note in result.notes:
        console.print(note, highlight=False)
    if result.report_dir:
        console.print(f"Report: {result.report_dir}/report.html", highlight=False)
    for warning in result.warnings:
        console.print(f"[yellow]Warning:[/] {warning}", highlight=False)
