"""`mptrain rollback`: make an earlier model version production again."""

from __future__ import annotations

from typing import Annotated

import typer

from marketpredictor_train.cli._app import app
from marketpredictor_train.cli._common import (
    ConfigOpt,
    LogLevelOpt,
    LogsDirOpt,
    ModelsDirOpt,
    complete_version,
    run_reported,
    settings_from,
    setup_logging,
)
from marketpredictor_train.errors import HookError
from marketpredictor_train.results import RollbackResult

_HELP = (
    "Make an earlier model version production again.\n\n"
    "The version's file is copied atomically to prod_model.bin under the store lock and the "
    "change is recorded in the promotion history; then the post-promotion command runs if one "
    "is configured. Exit 0: done; 1: store error, or the post-promotion command failed (the "
    "rollback stands); 3: unknown or malformed version."
)


@app.command("rollback", help=_HELP)
def rollback(
    ctx: typer.Context,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="Version to make production, e.g. 20250120_020015. "
            "Default: the production model before the current one.",
            autocompletion=complete_version,
        ),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why; recorded in the promotion history."),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print the result as one JSON document on stdout."),
    ] = False,
    models_dir: ModelsDirOpt = None,
    logs_dir: LogsDirOpt = None,
    log_level: LogLevelOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Make an earlier model version production again (see _HELP)."""

    def run() -> RollbackResult:
        from marketpredictor_train import api

        settings = settings_from(ctx, skip=("version", "reason", "json_output"))
        setup_logging(settings)
        try:
            return api.rollback(settings, version, reason=reason)
        except HookError as exc:
            if isinstance(exc.result, RollbackResult) and not json_output:
                _render(exc.result)  # production did change: say so before the error
            raise

    run_reported("rollback", None, run, _render, json_stdout=json_output)


def _render(result: RollbackResult) -> None:
    from marketpredictor_train.cli._console import err_console

    console = err_console()
    model = result.model
    if result.record is None:
        console.print(
            f"{result.version} is production already; nothing changed, nothing recorded.",
            highlight=False,
        )
        return
    accuracy = model.metrics.get("accuracy")
    details = [model.model_type or "unknown type"]
    if isinstance(accuracy, int | float):
        details.append(f"accuracy {accuracy:.2%}")
    console.print(
        f"[green]Production is now {result.version}[/] ({', '.join(details)}), "
        f"was {result.previous_version or 'none'}.",
        highlight=False,
    )
    registry = result.registry
    if registry is not None and registry.champion_version is not None:
        console.print(
            f"MLflow: {registry.uri} is {registry.registered_model} version "
            f"{registry.champion_version}.",
            highlight=False,
        )
    for warning in result.warnings:
        console.print(f"[yellow]Warning:[/] {warning}", highlight=False)
    if result.hook is not None and result.hook.ran and result.hook.ok:
        console.print(result.hook.message, highlight=False, markup=False)
    for warning in result.warnings:
        console.print(f"[yellow]Warning:[/] {warning}", highlight=False)
