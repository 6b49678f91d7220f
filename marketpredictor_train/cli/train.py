"""`mptrain train`: train, validate, version and (maybe) promote a model."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from marketpredictor_train.cli._app import app
from marketpredictor_train.cli._common import (
    ConfigOpt,
    DeviceChoice,
    LogLevelOpt,
    LogsDirOpt,
    ModelsDirOpt,
    OutputJsonOpt,
    PeriodChoice,
    QuietOpt,
    build_settings,
    complete_model_type,
    setup_logging,
    write_json,
)
from marketpredictor_train.cli._validation_options import (
    BacktestMonthsOpt,
    CostPerTradeOpt,
    EmbargoDaysOpt,
    PrimaryMetricOpt,
    ReportDirOpt,
)
from marketpredictor_train.errors import MptrainError


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
    period: Annotated[
        PeriodChoice | None,
        typer.Option(
            "--period",
            help="Historical data period, counted back from the last "
            "date in the data [default: 5y].",
        ),
    ] = None,
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
    model_type: Annotated[
        str | None,
        typer.Option(
            "--model-type",
            help="Model type: xgb, or any installed type [default: xgb].",
            autocompletion=complete_model_type,
        ),
    ] = None,
    dry_run: Annotated[
        bool | None,
        typer.Option("--dry-run", help="Train and validate but never save or promote."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Market data: yahoo, sample (offline, bundled), or a "
            "CSV/Parquet file or folder [default: yahoo].",
        ),
    ] = None,
    tickers: Annotated[
        str | None,
        typer.Option("--tickers", help="Comma-separated tickers [default: the source's universe]."),
    ] = None,
    horizon: Annotated[
        int | None,
        typer.Option(
            "--horizon", min=1, max=60, help="Trading days the label looks ahead [default: 1]."
        ),
    ] = None,
    offline: Annotated[
        bool | None,
        typer.Option("--offline", help="Use only the market-data cache; no network."),
    ] = None,
    device: Annotated[
        DeviceChoice | None,
        typer.Option(
            "--device", help="Where to fit: auto (GPU when present), cpu or cuda [default: auto]."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed [default: 42].")] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            metavar="URL",
            help="With --optimize: study database (SQLAlchemy URL, e.g. PostgreSQL) "
            "[default: sqlite in <models-dir>/optuna.db].",
        ),
    ] = None,
    study_name: Annotated[
        str | None,
        typer.Option(
            "--study-name",
            metavar="NAME",
            help="With --optimize: study to create or join [default: derived from the "
            "model type and data].",
        ),
    ] = None,
    backtest_months: BacktestMonthsOpt = None,
    embargo_days: EmbargoDaysOpt = None,
    dead_band: Annotated[
        float | None,
        typer.Option(
            "--dead-band",
            min=0.0,
            max=0.49,
            help="Moves smaller than this (0.002 = 0.2%) get no label and are left out of "
            "training and backtest [default: 0].",
        ),
    ] = None,
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
    started = time.monotonic()
    try:
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
            result = api.train(settings, progress=progress)
    except MptrainError as exc:
        if output_json is not None:
            from marketpredictor_train.results import failure_document

            write_json(output_json, failure_document(exc, duration_s=time.monotonic() - started))
        raise

    from marketpredictor_train.cli._render import render_train_result

    render_train_result(result)
    if output_json is not None:
        write_json(output_json, result.to_dict())
    raise typer.Exit(result.exit_code)
