"""Rendering of results for people: Rich tables on stderr, beside the logs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketpredictor_train.cli._console import err_console

if TYPE_CHECKING:
    from marketpredictor_train.results import TrainResult


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def render_train_result(result: TrainResult) -> None:
    from rich.table import Table

    console = err_console()
    table = Table(
        title=f"Backtest {result.data_window.get('backtest_start')} .. "
        f"{result.data_window.get('backtest_end')} ({result.n_test} rows)"
    )
    table.add_column("metric")
    table.add_column("new model", justify="right")
    table.add_column("production", justify="right")
    table.add_column("threshold", justify="right")
    table.add_column("", justify="center")
    prod = result.production_metrics or {}
    for name, floor in result.thresholds.items():
        value = float(result.metrics.get(name, 0.0))
        table.add_row(
            name,
            _pct(value),
            _pct(prod.get(name)),
            _pct(floor),
            "[green]pass[/]" if value >= floor else "[red]fail[/]",
        )
    console.print(table)
    colour = "green" if result.promoted else ("yellow" if result.dry_run else "red")
    console.print(f"[{colour}]{result.reason}[/]", highlight=False)
    if result.version:
        console.print(
            f"Saved version {result.version}" + (" (production)" if result.promoted else ""),
            highlight=False,
        )
    for warning in result.warnings:
        console.print(f"[yellow]Warning:[/] {warning}", highlight=False)
