"""Store operations as the CLI and the public API call them: Settings in, a result value out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marketpredictor_train.store.history import PromotionRecord
from marketpredictor_train.store.hooks import (
    HookOutcome,
    PostPromoteHookFailed,
    run_post_promote_hook,
)
from marketpredictor_train.store.store import ModelStore, StoredModel, UnreadableFile

if TYPE_CHECKING:
    from marketpredictor_train.config import Settings

LISTING_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class RollbackResult:
    """A completed rollback: the history record, the model now in production, and what
    the post-promotion command did."""

    record: PromotionRecord
    model: StoredModel
    hook: HookOutcome

    @property
    def version(self) -> str:
        return self.record.to_version

    @property
    def previous_version(self) -> str | None:
        return self.record.from_version

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": LISTING_SCHEMA_VERSION,
            "action": self.record.action,
            "version": self.version,
            "previous_version": self.previous_version,
            "record": self.record.to_dict(),
            "model": self.model.summary(),
            "hook": self.hook.to_dict() if self.hook.ran else None,
        }


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune removed and what it kept."""

    keep: int
    removed: tuple[str, ...]
    kept: tuple[str, ...]  # non-production versions left, newest first
    production: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "keep": self.keep,
            "removed": list(self.removed),
            "kept": list(self.kept),
            "production": self.production,
        }


@dataclass(frozen=True, slots=True)
class ModelsListing:
    """The store at one moment: versions newest first, production, history oldest first."""

    models_dir: Path
    models: tuple[StoredModel, ...]
    production: StoredModel | None
    production_error: str | None
    history: tuple[PromotionRecord, ...]
    unreadable: tuple[UnreadableFile, ...]
    pruned: PruneResult | None = None

    @property
    def production_recorded(self) -> bool:
        """False when production was changed outside mptrain (e.g. a manual ``cp``) since
        the last recorded promotion."""
        if self.production is None:
            return True
        return bool(self.history) and self.history[-1].to_version == self.production.version

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": LISTING_SCHEMA_VERSION,
            "models_dir": str(self.models_dir),
            "production": self.production.summary() if self.production else None,
            "production_error": self.production_error,
            "production_recorded": self.production_recorded,
            "models": [m.summary() for m in self.models],
            "unreadable": [{"path": str(u.path), "reason": u.reason} for u in self.unreadable],
            "history": [r.to_dict() for r in self.history],
            "pruned": self.pruned.to_dict() if self.pruned else None,
        }


def rollback(
    settings: Settings, version: str | None = None, *, reason: str | None = None
) -> RollbackResult:
    """Make ``version`` production again (None: the previous production model), then run the
    post-promotion command. If that command fails, :class:`PostPromoteHookFailed` (a
    HookError, exit 1) is raised carrying this result; the rollback stands."""
    store = ModelStore(settings.models_dir)
    if reason is None:
        reason = "rollback to previous production" if version is None else "rollback"
    record = store.rollback(version, reason=reason)
    model = store.get(record.to_version)
    hook = run_post_promote_hook(settings, record)
    result = RollbackResult(record=record, model=model, hook=hook)
    if not hook.ok:
        raise PostPromoteHookFailed(hook, result=result)
    return result


def prune_models(settings: Settings, keep: int) -> PruneResult:
    """Keep the newest ``keep`` non-production versions and delete the rest."""
    store = ModelStore(settings.models_dir)
    removed = store.prune(keep)
    production = store.production()
    prod_version = production.version if production else None
    kept = tuple(v for v in store.version_names() if v != prod_version)
    return PruneResult(keep=keep, removed=tuple(removed), kept=kept, production=prod_version)


def list_models(settings: Settings, *, prune: int | None = None) -> ModelsListing:
    """Everything in the store; with ``prune``, prune to that many versions first."""
    pruned = prune_models(settings, prune) if prune is not None else None
    store = ModelStore(settings.models_dir)
    scan = store.scan()
    return ModelsListing(
        models_dir=store.models_dir,
        models=scan.models,
        production=scan.production,
        production_error=scan.production_error,
        history=tuple(store.history()),
        unreadable=scan.unreadable,
        pruned=pruned,
    )
