"""`mptrain validate`: backtest the production model, a version or a model file on the
latest data, against the thresholds, with a report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from marketpredictor_train.cli._app import app
from marketpredictor_train.cli._common import (
    BacktestMonthsOpt,
    ConfigOpt,
    CostPerTradeOpt,
    EmbargoDaysOpt,
    GateLevelOpt,
    LogLevelOpt,
    LogsDirOpt,
    MinAccuracyOpt,
    MinF1Opt,
    MinPrecisionOpt,
    MinRecallOpt,
    ModelsDirOpt,
    OfflineOpt,
    OutputJsonOpt,
    PeriodOpt,
    PrimaryMetricOpt,
    QuietOpt,
    ReportDirOpt,
    SkillGateOpt,
    SourceOpt,
    TickersOpt,
    UniverseOpt,
    complete_version,
    run_reported,
    settings_from,
    setup_logging,
)

_HELP = (
    "Backtest a saved model on the latest data: the production model, or --version V, or "
    "--model-file PATH.\n\n"
    "Scores the last --backtest-months of the data, leaving out any row the model learned "
    "from, with the same metrics, baselines, trading view and report as train (the report "
    "goes to models/reports/<version>/validate_<time>_<run>/). When the model is not "
    "production, production is scored on the same rows for comparison. Exit 0: every "
    "metric meets its threshold; 1: data or model error; 2: below a threshold; "
    "3: configuration error."
)

if TYPE_CHECKING:
    from marketpredictor_train.results import ValidateResult


@app.command("validate", help=_HELP)
def validate(
    ctx: typer.Context,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="Validate this saved version (e.g. 20250120_020015) instead of production.",
            autocompletion=complete_version,
        ),
    ] = None,
    model_file: Annotated[
        Path | None,
        typer.Option(
            "--model-file",
            exists=True,
            dir_okay=False,
            help="Validate this model file (an mptrain .bin) instead of production.",
        ),
    ] = None,
    source: SourceOpt = None,
    tickers: TickersOpt = None,
    period: PeriodOpt = None,
    offline: OfflineOpt = None,
    backtest_months: BacktestMonthsOpt = None,
    embargo_days: EmbargoDaysOpt = None,
    min_accuracy: MinAccuracyOpt = None,
    min_precision: MinPrecisionOpt = None,
    min_recall: MinRecallOpt = None,
    min_f1: MinF1Opt = None,
    primary_metric: PrimaryMetricOpt = None,
    skill_gate: SkillGateOpt = None,
    gate_level: GateLevelOpt = None,
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
    """Backtest a saved model on the latest data (see _HELP)."""

    def run() -> ValidateResult:
        settings = settings_from(ctx, skip=("version", "model_file"))
        setup_logging(settings)
        from marketpredictor_train import api
        from marketpredictor_train.cli._progress import progress_bars

        with progress_bars(quiet=settings.quiet) as progress:
            return api.validate(settings, version=version, model_file=model_file, progress=progress)

    from marketpredictor_train.cli._render import render_validate_result

    result = run_reported("validate", output_json, run, render_validate_result)
    raise typer.Exit(result.exit_code)
