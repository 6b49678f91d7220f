"""`mptrain train`: train, validate, version and (maybe) promote a model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

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
    StudyNameOpt,
    StudyStorageOpt,
    ThreadsOpt,
    TickersOpt,
    UniverseOpt,
    run_reported,
    settings_from,
    setup_logging,
)

if TYPE_CHECKING:
    from marketpredictor_train.results import TrainResult


@app.command("train")
def train(
    ctx: typer.Context,
    optimize: Annotated[
        bool | None,
        typer.Option("--optimize", help="Run hyperparameter optimization before training."),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option("--trials", min=1, help="Number of optimization trials [default: 20]."),
    ] = None,
    period: PeriodOpt = None,
    force: Annotated[
        bool | None,
        typer.Option(
            "--force",
            help="Promote even if the model fails the thresholds or is "
            "worse than the current production model.",
        ),
    ] = None,
    min_accuracy: MinAccuracyOpt = None,
    min_precision: MinPrecisionOpt = None,
    min_recall: MinRecallOpt = None,
    min_f1: MinF1Opt = None,
    model_type: ModelTypeOpt = None,
    dry_run: Annotated[
        bool | None,
        typer.Option("--dry-run", help="Train and validate but never save or promote."),
    ] = None,
    source: SourceOpt = None,
    tickers: TickersOpt = None,
    horizon: HorizonOpt = None,
    offline: OfflineOpt = None,
    device: DeviceOpt = None,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    storage: StudyStorageOpt = None,
    study_name: StudyNameOpt = None,
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
    skip_validation: Annotated[
        bool | None,
        typer.Option(
            "--skip-validation",
            help="Skip the backtest stage (no metrics, comparison or report). The model is "
            "still fitted on the training part only and saved, but never promoted unless "
            "--force; validate it later with `mptrain validate --version V`.",
        ),
    ] = None,
    refit: Annotated[
        bool | None,
        typer.Option(
            "--refit",
            help="After the model passes the gate, refit it on every row (backtest included) "
            "and save and promote that model; its reported metrics are those of the "
            "validated model before the refit.",
        ),
    ] = None,
    report_dir: ReportDirOpt = None,
    models_dir: ModelsDirOpt = None,
    logs_dir: LogsDirOpt = None,
    log_level: LogLevelOpt = None,
    quiet: QuietOpt = None,
    config: ConfigOpt = None,
    output_json: OutputJsonOpt = None,
) -> None:
    """Train a model, validate it on the last months of data and promote it when it
    passes. Exit 0: done; 1: training failed; 2: not promoted (validation failed);
    3: configuration error."""

    def run() -> TrainResult:
        settings = settings_from(ctx)
        setup_logging(settings)
        from marketpredictor_train import api
        from marketpredictor_train.cli._progress import progress_bars

        with progress_bars(quiet=settings.quiet) as progress:
            return api.train(settings, progress=progress)

    from marketpredictor_train.cli._render import render_train_result

    result = run_reported("train", output_json, run, render_train_result)
    raise typer.Exit(result.exit_code)
