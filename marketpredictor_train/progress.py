"""Progress reporting from library code (a plain callback, drawn by the CLI only) and the
timer of a run's steps."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One step of a long stage ('download', 'features', 'fit', 'trials', ...)."""

    stage: str
    completed: int
    total: int | None = None
    description: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


def report(
    callback: ProgressCallback | None,
    stage: str,
    completed: int,
    total: int | None = None,
    description: str = "",
) -> None:
    """Send one event if someone listens; library code calls this and never draws."""
    if callback is not None:
        callback(ProgressEvent(stage, completed, total, description))


class StepTimer:
    """Seconds spent per named step of a run (a step timed twice adds up)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] = round(self.timings.get(step, 0.0) + time.perf_counter() - start, 3)
