"""`mptrain rollback`: make an earlier model version production again."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from marketpredictor_train.cli._app import app
from marketpredictor_train.cli._common import (
    ConfigOpt,
    LogLevelOpt,
    LogsDirOpt,
    ModelsDirOpt,
    build_settings,
    setup_logging,
)

if TYPE_CHECKING:
    from marketpredictor_train.store.service import RollbackResult


def complete_version(ctx: typer.Context, incomplete: str) -> list[str]:
    """Versions in the model store, from the folder listing alone (no model file is read).

    The folder is --models-dir if already typed, else MPTRAIN_MODELS_DIR, else ./models;
    a models_dir set only in a config file is not consulted, to keep completion instant."""
    from marketpredictor_train.store.names import list_version_names

    models_dir = ctx.params.get("models_dir") or os.environ.get("MPTRAIN_MODELS_DIR") or "models"
    return [v for v in list_version_names(Path(models_dir)) if v.startswith(incomplete)]


_HELP = (
    "Make an earlier model version production again.\n\n"
    "The version's file is copied atomically to prod_model.bin under the store lock and the "
    "change is recorded in the promotion history; then the post-promotion command runs if one "
    "is configured. Exit 0: done; 1: store error, or the post-promotion command failed (the "
    "rollback stands); 3: unknown or malformed version."
)


@app.command("rollback", help=_HELP)
def rollback(
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
    settings = build_settings(config, models_dir=models_dir, logs_dir=logs_dir, log_level=log_level)
    setup_logging(settings)
    from marketpredictor_train.store.hooks import PostPromoteHookFailed
    from marketpredictor_train.store.service import rollback as rollback_model

    try:
        result = rollback_model(settings, version, reason=reason)
    except PostPromoteHookFailed as exc:
        if exc.result is not None:  # production did change: say so before the error
            _render(exc.result, json_output)
        raise
    _render(result, json_output)


def _render(result: RollbackResult, json_output: bool) -> None:
    if json_output:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    from marketpredictor_train.cli._console import err_console

    console = err_console()
    model = result.model
    accuracy = model.metrics.get("accuracy")
    details = [model.model_type or "unknown type"]
    if isinstance(accuracy, int | float):
        details.append(f"accuracy {accuracy:.2%}")
    console.print(
        f"[green]Production is now {result.version}[/] ({', '.join(details)}), "
        f"was {result.previous_version or 'none'}.",
        highlight=False,
    )
    if result.hook.ran and result.hook.ok:
        console.print(result.hook.message, highlight=False, markup=False)
