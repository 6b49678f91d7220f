"""`mptrain optimize`: tune a model type's hyperparameters with Optuna and write
best_hyperparameters.json (the seed's scripts/optimize_hyperparams.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from marketpredictor_train.cli._app import app
from marketpredictor_train.cli._common import (
    BacktestMonthsOpt,
    ConfigOpt,
    DeadBandOpt,
    DeviceOpt,
    EmbargoDaysOpt,
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
    ThreadsOpt,
    TickersOpt,
    UniverseOpt,
    run_reported,
    settings_from,
    setup_logging,
)

if TYPE_CHECKING:
    from marketpredictor_train.results import OptimizeResult


@app.command("optimize")
def optimize(
    ctx: typer.Context,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            min=1,
            help="Trials this process runs; with several workers on one study, their "
            "counts add up [default: 20].",
        ),
    ] = None,
    model_type: ModelTypeOpt = None,
    storage: StudyStorageOpt = None,
    study_name: StudyNameOpt = None,
    optimize_timeout_s: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=1.0,
            metavar="SECONDS",
            help="Stop starting new trials after this many seconds [default: no limit].",
        ),
    ] = None,
    pruning: Annotated[
        bool | None,
        typer.Option(
            "--pruning/--no-pruning",
            help="Stop unpromising trials early (median pruner on each fold's validation "
            "log loss, round by round for xgb and lgb) [default: on].",
        ),
    ] = None,
    cv_folds: Annotated[
        int | None,
        typer.Option(
            "--cv-folds",
            min=2,
            max=20,
            help="Purged walk-forward folds over the training part [default: 4].",
        ),
    ] = None,
    period: PeriodOpt = None,
    source: SourceOpt = None,
    tickers: TickersOpt = None,
    horizon: HorizonOpt = None,
    backtest_months: BacktestMonthsOpt = None,
    universe: UniverseOpt = None,
    embargo_days: EmbargoDaysOpt = None,
    dead_band: DeadBandOpt = None,
    offline: OfflineOpt = None,
    device: DeviceOpt = None,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    models_dir: ModelsDirOpt = None,
    logs_dir: LogsDirOpt = None,
    log_level: LogLevelOpt = None,
    quiet: QuietOpt = None,
    config: ConfigOpt = None,
    output_json: OutputJsonOpt = None,
) -> None:
    """Tune hyperparameters with Optuna on purged walk-forward folds of the training part
    (the backtest is never seen) and write the best to <models-dir>/best_hyperparameters.json,
    which `mptrain train` then uses for the same model type.

    Run the same command with one --storage URL and --study-name on many machines to share
    one study. Exit 0: done; 1: data or fitting failed; 3: configuration error."""

    def run() -> OptimizeResult:
        settings = settings_from(ctx)
        setup_logging(settings)
        from marketpredictor_train import api
        from marketpredictor_train.cli._progress import progress_bars

        with progress_bars(quiet=settings.quiet) as progress:
            return api.optimize(settings, progress=progress)

    run_reported("optimize", output_json, run, _render)


def _render(result: OptimizeResult) -> None:
    from rich.table import Table

    from marketpredictor_train.cli._console import err_console

    tuning = result.tuning
    console = err_console()
    table = Table(
        title=f"Best of study {tuning.study_name} (trial {tuning.best_trial}, "
        f"CV log loss {tuning.best_value:.4f})"
    )
    table.add_column("parameter")
    table.add_column("value", justify="right")
    for name, value in tuning.best_params.items():
        table.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    states = ", ".join(f"{n} {s}" for s, n in sorted(tuning.trials_run_by_state.items()))
    study = ", ".join(f"{n} {s}" for s, n in sorted(tuning.study_trials_by_state.items()))
    accuracy = tuning.best_cv_accuracy
    console.print(
        f"This run: {tuning.trials_run} trials ({states}), {tuning.fits} fold fits, "
        f"{tuning.boosting_rounds} boosting rounds. Study: {study}.",
        highlight=False,
    )
    if accuracy is not None:
        console.print(
            f"Best CV accuracy {accuracy:.2%} over {len(tuning.folds)} walk-forward folds "
            "(about 50% is what daily direction usually allows).",
            highlight=False,
        )
    console.print(f"Saved {result.params_file}", highlight=False)
    for warning in result.warnings:
        console.print(f"[yellow]Warning:[/] {warning}", highlight=False)
