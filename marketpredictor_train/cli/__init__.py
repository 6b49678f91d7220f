"""The mptrain command line: a thin Typer skin over marketpredictor_train.api."""

from __future__ import annotations

import marketpredictor_train.cli.backtest  # noqa: F401  (registers the command)
import marketpredictor_train.cli.data  # noqa: F401  (registers the command)
import marketpredictor_train.cli.models_list  # noqa: F401  (registers the command)
import marketpredictor_train.cli.optimize  # noqa: F401  (registers the command)
import marketpredictor_train.cli.predict  # noqa: F401  (registers the command)
import marketpredictor_train.cli.rollback  # noqa: F401  (registers the command)
import marketpredictor_train.cli.validate  # noqa: F401  (registers the command)
from marketpredictor_train.cli import train  # noqa: F401  (registers the command)
from marketpredictor_train.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point."""
    import os

    # Before any OpenMP library loads (see models/threads.py; kept import-free here).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app(prog_name="mptrain")
