"""The one stderr console shared by logs, tables and progress bars."""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # Rich exits 1 when its reader goes away (`2>&1 | head -1`); the run goes on
            # without this output, and its exit code and --output-json stay its own.
            self.quiet = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self.file.fileno())
            except (OSError, ValueError):
                pass
            finally:
                os.close(devnull)

    return _Console(stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")) or None)


@cache
def err_console() -> Console:
    return _console(stderr=True)


@cache
def out_console() -> Console:
    return _console(stderr=False)
