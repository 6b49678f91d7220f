"""`mptrain data`: fill the market-data cache (fetch), show what it holds (info), and
load a source through every input check without training (check)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from marketpredictor_train.cli import _console
from marketpredictor_train.cli._app import app
from marketpredictor_train.cli._common import (
    ConfigOpt,
    LogLevelOpt,
    LogsDirOpt,
    Period,
    QuietOpt,
    run_reported,
    settings_from,
    setup_logging,
)

if TYPE_CHECKING:
    from marketpredictor_train.api import ProgressCallback, ProgressEvent
    from marketpredictor_train.config import Settings
    from marketpredictor_train.results import DataCheckResult, DataFetchResult, DataInfoResult

data_app = typer.Typer(
    name="data",
    help="Market data: fill the Yahoo cache (fetch), inspect it (info), and check a "
    "source against every input check without training (check).",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")

TickersOpt = Annotated[
    str | None,
    typer.Option(
        "--tickers",
        help="Comma-separated tickers [default: the source's universe; for yahoo a few dozen "
        "US large caps].",
    ),
]
PeriodOpt = Annotated[
    Period | None,
    typer.Option(
        "--period", help="Years of daily bars, counted back from the last date [default: 5y]."
    ),
]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Market-data cache folder [env MPTRAIN_CACHE_DIR; default: ~/.cache/mptrain].",
        file_okay=False,
    ),
]
_NUMERIC = {"rows", "size", "behind"}

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON document on stdout.")
]


@data_app.command("fetch")
def fetch(
    ctx: typer.Context,
    tickers: Annotated[
        str | None,
        typer.Option(
            "--tickers",
            help="Comma-separated tickers [default: the tickers setting, else the default "
            "universe of a few dozen US large caps].",
        ),
    ] = None,
    period: PeriodOpt = None,
    full: Annotated[
        bool,
        typer.Option("--full", help="Download the whole period again, not just missing days."),
    ] = False,
    cache_dir: CacheDirOpt = None,
    json_output: JsonOpt = False,
    logs_dir: LogsDirOpt = None,
    log_level: LogLevelOpt = None,
    quiet: QuietOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Download daily bars from Yahoo into the cache: only the days it lacks, unless
    --full. Run it in CI before 'mptrain train --offline'. Exit 0: cached; 1: too few
    tickers could be downloaded; 3: configuration error."""

    def run() -> DataFetchResult:
        from marketpredictor_train import api

        settings = settings_from(ctx, skip=("full", "json_output"), source="yahoo")
        setup_logging(settings)
        with _progress(settings) as progress:
            return api.fetch_data(settings, full=full, progress=progress)

    run_reported("data fetch", None, run, _render_fetch, json_stdout=json_output)


def _render_fetch(result: DataFetchResult) -> None:
    report = result.report
    from rich.table import Table

    table = Table(title=f"Yahoo cache {report.start} .. {report.through} ({result.cache_dir})")
    for name in ("ticker", "status", "rows", "new rows", "last bar"):
        table.add_column(name, justify="right" if "rows" in name else "left", no_wrap=True)
    table.add_column("detail", overflow="fold")
    colours = {"failed": "red", "stale": "yellow"}
    for ticker in report.tickers:
        r = report.results[ticker]
        colour = colours.get(r.status, "green")
        table.add_row(
            ticker,
            f"[{colour}]{r.status}[/]",
            str(r.rows),
            str(r.new_rows),
            str(r.last or "-"),
            r.detail,
        )
    _console.err_console().print(table)
    _console.err_console().print(
        f"{len(report.usable)} of {len(report.tickers)} tickers cached; "
        f"{len(report.failed)} failed; {report.retries} retries.",
        highlight=False,
    )


@data_app.command("info")
def info(
    ctx: typer.Context,
    tickers: Annotated[
        str | None,
        typer.Option(
            "--tickers", help="Comma-separated tickers to show [default: every cached ticker]."
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify", help="Read every file in full and check it, as a run would (slower)."
        ),
    ] = False,
    cache_dir: CacheDirOpt = None,
    json_output: JsonOpt = False,
    log_level: LogLevelOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show the Yahoo cache without using the network: per ticker its rows, first and
    last date, file size, and how many days it is behind (stale) or whether it is
    corrupt. Exit 0 always, unless the configuration is wrong (3)."""

    def run() -> DataInfoResult:
        from marketpredictor_train import api

        settings = settings_from(ctx, skip=("verify", "json_output"))
        setup_logging(settings)
        return api.data_info(settings, verify=verify)

    run_reported("data info", None, run, _render_info, json_stdout=json_output)


def _render_info(result: DataInfoResult) -> None:
    inventory = result.inventory
    from rich.table import Table

    table = Table(title=f"Market-data cache {inventory.directory}")
    for name in ("ticker", "status", "rows", "first", "last", "size", "behind"):
        table.add_column(name, justify="right" if name in _NUMERIC else "left", no_wrap=True)
    colours = {"fresh": "green", "stale": "yellow", "corrupt": "red"}
    for t in inventory.tickers:
        table.add_row(
            t.ticker,
            f"[{colours[t.status]}]{t.status}[/]",
            str(t.rows),
            str(t.first or "-"),
            str(t.last or "-"),
            _size(t.size_bytes),
            "-" if t.days_behind is None else f"{t.days_behind} d",
        )
    console = _console.err_console()
    console.print(table)
    console.print(
        f"{len(inventory.tickers)} tickers, {_size(inventory.total_bytes)}; fresh means "
        f"checked with Yahoo through {inventory.expected_through}.",
        highlight=False,
    )
    for t in inventory.tickers:
        if t.problem:
            console.print(f"[red]Corrupt[/] {t.ticker}: {t.problem}", highlight=False)
    if inventory.missing:
        console.print(f"Not cached: {', '.join(inventory.missing)}", highlight=False)


@data_app.command("check")
def check(
    ctx: typer.Context,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="yahoo, sample, or a CSV/Parquet file or folder of them [default: yahoo].",
        ),
    ] = None,
    tickers: TickersOpt = None,
    period: PeriodOpt = None,
    offline: Annotated[
        bool | None,
        typer.Option("--offline", help="yahoo: use only the cache; no network."),
    ] = None,
    min_history: Annotated[
        int | None,
        typer.Option(
            "--min-history",
            min=0,
            help="Leave out tickers with fewer rows than this in the period [default: 0].",
        ),
    ] = None,
    cache_dir: CacheDirOpt = None,
    json_output: JsonOpt = False,
    logs_dir: LogsDirOpt = None,
    log_level: LogLevelOpt = None,
    quiet: QuietOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Load market data exactly as 'mptrain train' does and run every input check,
    without training: columns, dates, numbers, NaN/infinite or non-positive prices,
    high/low/open/close order, volume, duplicate rows. Exit 0: the data is usable;
    1: it is not (the message names the tickers and dates at fault); 3: configuration
    error (e.g. the path does not exist)."""

    def run() -> DataCheckResult:
        from marketpredictor_train import api

        settings = settings_from(ctx, skip=("min_history", "json_output"))
        setup_logging(settings)
        with _progress(settings) as progress:
            return api.check_data(settings, min_history=min_history or 0, progress=progress)

    run_reported("data check", None, run, _render_check, json_stdout=json_output)


def _render_check(result: DataCheckResult) -> None:
    loaded, summary = result.loaded, result.tickers
    from rich.table import Table

    table = Table(title=f"{loaded.source}: {loaded.start} .. {loaded.end}")
    table.add_column("ticker")
    table.add_column("rows", justify="right")
    table.add_column("first")
    table.add_column("last")
    for s in summary:
        table.add_row(s["ticker"], str(s["rows"]), str(s["first"]), str(s["last"]))
    console = _console.err_console()
    console.print(table)
    for ticker, why in loaded.dropped.items():
        console.print(f"[yellow]Left out[/] {ticker}: {why}", highlight=False)
    console.print(
        f"[green]OK[/] {len(loaded.tickers)} tickers, {loaded.rows} rows pass every check.",
        highlight=False,
    )


@contextmanager
def _progress(settings: Settings) -> Iterator[ProgressCallback | None]:
    """A Rich progress bar on the shared stderr console, only for people at a terminal."""
    console = _console.err_console()
    if settings.quiet or not console.is_terminal:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def on_event(event: ProgressEvent) -> None:
            if event.stage not in tasks:
                tasks[event.stage] = bar.add_task(event.stage, total=event.total)
            bar.update(
                tasks[event.stage],
                completed=event.completed,
                total=event.total,
                description=f"{event.stage} {event.description}".strip(),
            )

        yield on_event


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
