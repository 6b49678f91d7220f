"""The public library API: each function takes Settings and returns a result value."""

from __future__ import annotations

from marketpredictor_train.training import train

__all__ = ["train"]
