"""The Typer application and its error boundary: the one place exceptions become exit codes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer

# Typer (>= 0.29) carries its own copy of Click; its exception classes live here.
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from marketpredictor_train.errors import (
    EXIT_CONFIG_ERROR,
    EXIT_FAILURE,
    MptrainError,
)


class MptrainGroup(TyperGroup):
    """Runs the CLI and maps every outcome to the seed's exit codes.

    Click's usage errors (unknown option, bad choice, bad number, missing file) exit 3
    with one line instead of Click's 2; MptrainError subclasses exit with their own
    code; anything else is a bug and keeps its traceback.
    """

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        code = self._run(args, prog_name or "mptrain", complete_var, extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(
        self,
        args: Sequence[str] | None,
        prog_name: str,
        complete_var: str | None,
        extra: dict[str, Any],
    ) -> int:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:
            typer.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
            return 0
        except UsageError as exc:
            return _usage_error(exc)
        except typer.TyperException as exc:  # e.g. BadParameter raised outside parsing
            _print_error(exc.format_message())
            return EXIT_CONFIG_ERROR
        except typer.Abort:
            _print_error("Aborted.")
            return EXIT_FAILURE
        except MptrainError as exc:
            _print_error(exc.message, hint=exc.hint)
            return exc.exit_code
        return rv if isinstance(rv, int) else 0


def _usage_error(exc: UsageError) -> int:
    where = exc.ctx.command_path if exc.ctx else "mptrain"
    message = " ".join(exc.format_message().split())
    _print_error(f"{message} (see '{where} --help')")
    return EXIT_CONFIG_ERROR


def _print_error(message: str, hint: str | None = None) -> None:
    from rich.markup import escape

    from marketpredictor_train.cli._console import err_console

    try:
        err_console().print(
            f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True
        )
        if hint:
            err_console().print(hint, highlight=False, markup=False, soft_wrap=True)
    except BrokenPipeError:  # nobody reads stderr any more; the exit code still tells
        from marketpredictor_train.cli._common import silence_closed_outputs

        silence_closed_outputs()


app = typer.Typer(
    name="mptrain",
    cls=MptrainGroup,
    help="Train, tune, validate, version, promote and roll back MarketPredictor's "
    "stock-direction models.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=True,
    # Plain Click help: Typer's Rich help imports ~300 ms of modules (markdown, pygments,
    # tracebacks) on every --help, and its markup parser would swallow our literal
    # "[default: ...]" texts as style tags.
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        from marketpredictor_train import __version__

        typer.echo(f"mptrain {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Show the version and exit.",
    ),
) -> None:
    """Train, tune, validate, version, promote and roll back MarketPredictor's
    stock-direction models."""
