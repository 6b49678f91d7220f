"""Progress reporting from library code: a plain callback, drawn by the CLI only."""

from __future__ import annotations

from collections.abc import Callable
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
