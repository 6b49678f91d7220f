"""`mptrain models-list`: the saved versions, which one is production, and the promotion
history; optionally prune old versions first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from marketpredictor_train.cli._app import app
from marketpredictor_train.cli._common import (
    ConfigOpt,
    LogLevelOpt,
    LogsDirOpt,
    ModelsDirOpt,
    run_reported,
    settings_from,
    setup_logging,
)

if TYPE_CHECKING:
    from marketpredictor_train.results import ModelsListing

# The table shows the latest changes; --json has them all.
_HISTORY_ROWS = 20


_HELP = (
    "List model versions, the production model and the promotion history.\n\n"
    "Versions are shown newest first with their type, accuracy, F1 and whether they passed "
    "the promotion gate (with its reason), production marked; the "
    "history shows when, who, from which version to which, why, and whether it was forced."
)


@app.command("models-list", help=_HELP)
def models_list(
    ctx: typer.Context,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print the listing as one JSON document on stdout."),
    ] = False,
    prune: Annotated[
        int | None,
        typer.Option(
            "--prune",
            min=0,
            metavar="N",
            help="First delete all but the newest N non-production versions "
            "(production is never deleted).",
        ),
    ] = None,
    models_dir: ModelsDirOpt = None,
    logs_dir: LogsDirOpt = None,
    log_level: LogLevelOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List model versions, the production model and the promotion history (see _HELP)."""

    def run() -> ModelsListing:
        from marketpredictor_train import api

        settings = settings_from(ctx, skip=("json_output", "prune"))
        setup_logging(settings)
        return api.list_models(settings, prune=prune)

    run_reported("models-list", None, run, _render, json_stdout=json_output)


def _render(listing: ModelsListing) -> None:
    from rich.table import Table

    from marketpredictor_train.cli._console import err_console

    console = err_console()
    if listing.pruned is not None:
        removed = listing.pruned.removed
        console.print(
            f"Pruned {len(removed)} version(s)"
            + (f": {', '.join(removed)}" if removed else "")
            + f"; kept the newest {listing.pruned.keep} besides production.",
            highlight=False,
        )
    if listing.production_error:
        console.print(f"[bold red]Production model unreadable:[/] {listing.production_error}")
        console.print("Repair it with `mptrain rollback --version V`.", markup=False)
    for bad in listing.unreadable:
        console.print(f"[yellow]Skipped[/] {bad.reason}", highlight=False)

    if not listing.models and listing.production is None:
        console.print(
            f"No models in {listing.models_dir} yet; train one with `mptrain train`.",
            markup=False,
        )
    else:
        table = Table(title=f"Models in {listing.models_dir}")
        table.add_column("", justify="center")
        # Versions are what an operator copies into `rollback --version`: never cut them.
        table.add_column("version", no_wrap=True)
        table.add_column("created (UTC)")
        table.add_column("type")
        table.add_column("accuracy", justify="right")
        table.add_column("F1", justify="right")
        table.add_column("gate", justify="center")
        table.add_column("size", justify="right")
        for model in listing.models:
            metrics = model.metrics
            table.add_row(
                "[bold green]prod[/]" if model.is_production else "",
                model.version,
                _when(model.created_at),
                model.model_type or "-",
                _pct(metrics.get("accuracy")),
                _pct(metrics.get("f1")),
                _GATE[model.gate_passed],
                _size(model.size_bytes),
            )
        console.print(table)
        _render_decisions(listing)
        prod = listing.production
        if prod is not None and not any(m.is_production for m in listing.models):
            console.print(
                f"Production is {prod.version}, whose versioned file is not in the folder.",
                highlight=False,
            )
        if prod is not None and not listing.production_recorded:
            console.print(
                f"[yellow]Note:[/] production ({prod.version}) was set outside mptrain "
                "(e.g. a manual cp); the history below does not record that change.",
                highlight=False,
            )

    if listing.history:
        _render_history(listing)


_GATE = {True: "[green]pass[/]", False: "[red]fail[/]", None: "-"}


def _render_decisions(listing: ModelsListing) -> None:
    """The gate's reason for each version, newest first (the table has only pass/fail)."""
    from marketpredictor_train.cli._console import err_console

    decided = [m for m in listing.models if m.gate_reason]
    if not decided:
        return
    console = err_console()
    console.print("Gate decisions (newest first):", highlight=False)
    for model in decided:
        console.print(f"  {model.version}: {model.gate_reason}", highlight=False, markup=False)


def _render_history(listing: ModelsListing) -> None:
    from rich.table import Table

    from marketpredictor_train.cli._console import err_console

    console = err_console()
    history = Table(title="Promotion history (latest last)")
    history.add_column("when (UTC)")
    history.add_column("action")
    history.add_column("who", overflow="fold")
    history.add_column("from → to", no_wrap=True)
    history.add_column("why")
    history.add_column("forced")
    shown = listing.history[-_HISTORY_ROWS:]
    registered = any(record.mlflow_model_version for record in shown)
    if registered:
        history.add_column("MLflow", justify="right")
    for record in shown:
        row = [
            _when(record.timestamp),
            record.action,
            f"{record.user}@{record.host}",
            f"{record.from_version or '-'}\n→ {record.to_version}",
            _short(record.reason),
            "[red]yes[/]" if record.forced else "no",
        ]
        if registered:
            row.append(f"v{record.mlflow_model_version}" if record.mlflow_model_version else "-")
        history.add_row(*row)
    console.print(history)
    earlier = len(listing.history) - _HISTORY_ROWS
    if earlier > 0:
        console.print(f"({earlier} earlier changes; see --json)", highlight=False)


def _short(text: str, limit: int = 72) -> str:
    """A reason cut to fit the table; --json and the gate decisions above have it whole."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _pct(value: Any) -> str:
    return f"{value:.2%}" if isinstance(value, int | float) else "-"


def _when(timestamp: str | None) -> str:
    # ISO "2025-01-20T02:00:15+00:00" -> date and time on two lines, to keep the table narrow
    return (timestamp or "-").replace("T", "\n").removesuffix("+00:00")


def _size(size_bytes: int) -> str:
    if size_bytes < 1024:
        return f"{size_bytes} B"
    value = size_bytes / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
