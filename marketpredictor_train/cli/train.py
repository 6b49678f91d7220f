"""`mptrain train`: train, validate, version and (maybe) promote a model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from marketpredictor_train.cli._app import app
from marketpredictor_train.cli._common import (
    ConfigOpt,
    DeadBandOpt,
    DeviceOpt,
    HorizonOpt,
    LogLevelOpt,
    LogsDirOpt,
    ModelsDirOpt,
    ModelTypeOpt,
    OfflineOpt,
    OutputJsonOpt,
    PeriodOpt,
    QuietOpt,
    SeedOpt,
    SourceOpt,
    StudyNameOpt,
    StudyStorageOpt,
    TickersOpt,
    build_settings,
    run_reported,
    setup_logging,
)
from marketpredictor_train.cli._validation_options import (
    BacktestMonthsOpt,
    CostPerTradeOpt,
    EmbargoDaysOpt,
    PrimaryMetricOpt,
    ReportDirOpt,
)

if TYPE_CHECKING:
    from marketpredictor_train.results import TrainResult


@app.command("train")
def train(
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
    min_accuracy: Annotated[
        float | None,
        typer.Option(
            "--min-accuracy",
            min=0.0,
            max=1.0,
            help="Minimum backtest accuracy for promotion [default: 0.60].",
        ),
    ] = None,
    min_precision: Annotated[
        float | None,
        typer.Option(
            "--min-precision",
            min=0.0,
            max=1.0,
            help="Minimum backtest precision for promotion [default: 0.55].",
        ),
    ] = None,
    min_recall: Annotated[
        float | None,
        typer.Option(
            "--min-recall",
            min=0.0,
            max=1.0,
            help="Minimum backtest recall for promotion [default: 0.50].",
        ),
    ] = None,
    min_f1: Annotated[
        float | None,
        typer.Option(
            "--min-f1",
            min=0.0,
            max=1.0,
            help="Minimum backtest F1 score for promotion [default: 0.52].",
        ),
    ] = None,
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
    storage: StudyStorageOpt = None,
    study_name: StudyNameOpt = None,
    backtest_months: BacktestMonthsOpt = None,
    embargo_days: EmbargoDaysOpt = None,
    dead_band: DeadBandOpt = None,
    primary_metric: PrimaryMetricOpt = None,
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
        settings = build_settings(
            config,
            optimize=optimize,
            trials=trials,
            period=period,
            force=force,
            min_accuracy=min_accuracy,
            min_precision=min_precision,
            min_recall=min_recall,
            min_f1=min_f1,
            model_type=model_type,
            dry_run=dry_run,
            source=source,
            tickers=tickers,
            horizon=horizon,
            offline=offline,
            device=device,
            seed=seed,
            storage=storage,
            study_name=study_name,
            backtest_months=backtest_months,
            embargo_days=embargo_days,
            dead_band=dead_band,
            primary_metric=primary_metric,
            cost_per_trade=cost_per_trade,
            skip_validation=skip_validation,
            refit=refit,
            report_dir=report_dir,
            models_dir=models_dir,
            logs_dir=logs_dir,
            log_level=log_level,
            quiet=quiet,
        )
        setup_logging(settings)
        from marketpredictor_train import api
        from marketpredictor_train.cli._progress import progress_bars

        with progress_bars(quiet=settings.quiet) as progress:
            return api.train(settings, progress=progress)

    from marketpredictor_train.cli._render import render_train_result

    result = run_reported(output_json, run, render_train_result)
    raise typer.Exit(result.exit_code)
