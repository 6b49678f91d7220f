"""The model store: self-describing model files, versions, the production model, its
promotion history and the post-promotion command. The commands over it (rollback,
listing, prune) are in :mod:`marketpredictor_train.pipelines.store_ops`.

Names are imported on first use, so that shell completion can read
``marketpredictor_train.store.names`` without paying for the rest.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from marketpredictor_train.store.history import PromotionRecord, RegisteredVersion
    from marketpredictor_train.store.hooks import HookOutcome, run_post_promote_hook
    from marketpredictor_train.store.modelfile import ModelFile, read_model_file, write_model_file
    from marketpredictor_train.store.names import VERSION_PATTERN, is_version
    from marketpredictor_train.store.store import (
        ModelStore,
        ProductionChanged,
        StoredModel,
        StoreScan,
        UnreadableFile,
    )

_EXPORTS: dict[str, str] = {
    "ModelStore": "store",
    "ProductionChanged": "store",
    "StoredModel": "store",
    "StoreScan": "store",
    "UnreadableFile": "store",
    "PromotionRecord": "history",
    "RegisteredVersion": "history",
    "ModelFile": "modelfile",
    "read_model_file": "modelfile",
    "write_model_file": "modelfile",
    "VERSION_PATTERN": "names",
    "is_version": "names",
    "HookOutcome": "hooks",
    "run_post_promote_hook": "hooks",
}

__all__ = [
    "HookOutcome",
    "ModelFile",
    "ModelStore",
    "ProductionChanged",
    "PromotionRecord",
    "RegisteredVersion",
    "StoreScan",
    "StoredModel",
    "UnreadableFile",
    "VERSION_PATTERN",
    "is_version",
    "read_model_file",
    "run_post_promote_hook",
    "write_model_file",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
