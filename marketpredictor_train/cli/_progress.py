"""Progress bars for the library's long steps (downloads, features, training, trials),
drawn on the shared stderr console, only for a person at a terminal and never with --quiet.

The library only calls a ProgressCallback (marketpredictor_train.api); this module is
the one that draws. Log lines keep flowing while bars are shown: the live display swaps a
proxy in for sys.stderr that prints each line above the bars (see logconfig)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from marketpredictor_train.api import ProgressCallback, ProgressEvent

# Stage names the library reports, in words for people; other stages show their own name.
STAGE_LABELS = {
    "download": "Downloading prices",
    "load": "Loading data",
    "features": "Building features",
    "fit": "Training",
    "trials": "Optimizing",
    "validate": "Validating",
    "backtest": "Backtest steps",
}


class ProgressBars:
    """A ProgressCallback with one bar per stage; a bar goes once its stage completes.

    The live display starts with the first event (so a run that reports nothing draws
    nothing) and is removed by :meth:`close`, leaving only the log lines and results."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, event: ProgressEvent) -> None:
        progress = self._started()
        label = STAGE_LABELS.get(event.stage, event.stage)
        description = f"{label}: {event.description}" if event.description else label
        task = self._tasks.get(event.stage)
        if task is None:
            task = progress.add_task(description, total=event.total)
            self._tasks[event.stage] = task
        # total=None (unknown) draws a pulsing bar; Rich's update() cannot unset a total.
        progress.update(task, description=description, completed=event.completed)
        if event.total is not None:
            progress.update(task, total=event.total)
            if event.completed >= event.total:
                progress.remove_task(task)
                del self._tasks[event.stage]

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks.clear()

    def _started(self) -> Progress:
        if self._progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
            )
            self._progress.start()
        return self._progress


def wants_progress_bars(console: Console, *, quiet: bool) -> bool:
    """Bars only for a person: an interactive terminal (not TERM=dumb, not a pipe or a CI
    log, even when FORCE_COLOR makes Rich treat it as a terminal) and not --quiet."""
    if quiet or not console.is_interactive:
        return False
    isatty = getattr(console.file, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


@contextmanager
def progress_bars(*, quiet: bool) -> Iterator[ProgressCallback | None]:
    """The callback to hand to the library for the duration of the block, or None when
    no bars should be drawn (the library then skips reporting altogether)."""
    from marketpredictor_train.cli._console import err_console

    console = err_console()
    if not wants_progress_bars(console, quiet=quiet):
        yield None
        return
    bars = ProgressBars(console)
    try:
        yield bars
    finally:
        bars.close()
