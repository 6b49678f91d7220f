"""`mptrain predict`: P(up) per ticker from the production model (or a version, or a model
file) on the latest market data."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from marketpredictor_train.cli._app import app
from marketpredictor_train.cli._common import (
    ConfigOpt,
    LogLevelOpt,
    LogsDirOpt,
    ModelsDirOpt,
    OfflineOpt,
    OutputJsonOpt,
    PeriodOpt,
    QuietOpt,
    SourceOpt,
    TickersOpt,
    complete_version,
    run_reported,
    settings_from,
    setup_logging,
)

if TYPE_CHECKING:
    from marketpredictor_train.results import PredictResult

_HELP = (
    "Predict with the production model (or --version V, or --model-file PATH): the "
    "probability that each ticker closes higher after the model's horizon, on the latest "
    "date in the data (or --date D, or --all-dates).\n\n"
    "The model's own features are built from the data options given (use those train "
    "used). 'up' when P(up) >= 0.5. Exit 0: predicted; 1: no production model, an "
    "unreadable model, or data that ends before --date; 3: bad options."
)
# Rows shown in the table; --output and --output-json carry them all.
_TABLE_ROWS = 40


@app.command("predict", help=_HELP)
def predict(
    ctx: typer.Context,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="Predict with this saved version (e.g. 20250120_020015) instead of production.",
            autocompletion=complete_version,
        ),
    ] = None,
    model_file: Annotated[
        Path | None,
        typer.Option(
            "--model-file",
            exists=True,
            dir_okay=False,
            help="Predict with this model file (an mptrain .bin) instead of production.",
        ),
    ] = None,
    date: Annotated[
        datetime | None,
        typer.Option(
            "--date",
            formats=["%Y-%m-%d"],
            metavar="YYYY-MM-DD",
            help="Predict for this date [default: the latest date in the data].",
        ),
    ] = None,
    all_dates: Annotated[
        bool,
        typer.Option("--all-dates", help="Predict for every date that has complete features."),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            dir_okay=False,
            help="Also write the predictions to this file: .csv or .parquet.",
        ),
    ] = None,
    source: SourceOpt = None,
    tickers: TickersOpt = None,
    period: PeriodOpt = None,
    offline: OfflineOpt = None,
    models_dir: ModelsDirOpt = None,
    logs_dir: LogsDirOpt = None,
    log_level: LogLevelOpt = None,
    quiet: QuietOpt = None,
    config: ConfigOpt = None,
    output_json: OutputJsonOpt = None,
) -> None:
    """Predict with a saved model on the latest data (see _HELP)."""

    def run() -> PredictResult:
        settings = settings_from(ctx, skip=("version", "model_file", "date", "all_dates", "output"))
        setup_logging(settings)
        from marketpredictor_train import api
        from marketpredictor_train.cli._progress import progress_bars

        with progress_bars(quiet=settings.quiet) as progress:
            return api.predict(
                settings,
                version=version,
                model_file=model_file,
                date=None if date is None else date.date(),
                all_dates=all_dates,
                output=output,
                progress=progress,
            )

    result = run_reported("predict", output_json, run, _render)
    raise typer.Exit(result.exit_code)


def _render(result: PredictResult) -> None:
    from rich.table import Table

    from marketpredictor_train.cli._console import err_console

    console = err_console()
    days = "trading day" if result.horizon == 1 else f"{result.horizon} trading days"
    model = f"version {result.version}" if result.version else result.model_path
    when = "every date" if result.all_dates else result.date
    rows = result.records()
    table = Table(title=f"P(up over the next {days}) - {model} ({result.model_type}), {when}")
    table.add_column("ticker")
    table.add_column("date")
    table.add_column("P(up)", justify="right")
    table.add_column("prediction")
    for row in rows[-_TABLE_ROWS:]:
        colour = "green" if row["prediction"] == "up" else "red"
        table.add_row(
            row["ticker"],
            row["date"],
            f"{row['probability_up']:.4f}",
            f"[{colour}]{row['prediction']}[/]",
        )
    console.print(table)
    if len(rows) > _TABLE_ROWS:
        console.print(
            f"(the last {_TABLE_ROWS} of {len(rows):,} predictions; --output or "
            "--output-json has them all)",
            highlight=False,
        )
    if result.output:
        console.print(f"Predictions written to {result.output}", highlight=False)
    for warning in result.warnings:
        console.print(f"[yellow]Warning:[/] {warning}", highlight=False)
