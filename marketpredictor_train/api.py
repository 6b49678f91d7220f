"""The public library API: each function takes Settings and returns a result value."""

from __future__ import annotations

from marketpredictor_train.store.service import list_models, prune_models, rollback
from marketpredictor_train.training import train
from marketpredictor_train.tuning import optimize
from marketpredictor_train.validation.standalone import validate

__all__ = ["list_models", "optimize", "prune_models", "rollback", "train", "validate"]
