"""The store commands: rollback, prune and the listing of versions and history."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from marketpredictor_train.results import ModelsListing, PruneResult, RollbackResult

if TYPE_CHECKING:
    from marketpredictor_train.config import Settings


def rollback(
    settings: Settings, version: str | None = None, *, reason: str | None = None
) -> RollbackResult:
    """Make ``version`` production again (None: the previous production model), move the
    MLflow registry's alias with it, then run the post-promotion command. A version that is
    production already (and recorded so) is left as it is: nothing is recorded and no
    command runs. A version that failed the promotion gate when it was trained is rolled
    back to with a warning. If the post-promotion command fails,
    :class:`PostPromoteHookFailed` (a HookError, exit 1) is raised carrying this result;
    the rollback stands, as it does when the registry cannot be reached."""
    import structlog

    from marketpredictor_train.store import ModelStore
    from marketpredictor_train.store.hooks import PostPromoteHookFailed, run_post_promote_hook

    log = structlog.get_logger(__name__)
    store = ModelStore(settings.models_dir)
    if reason is None:
        reason = "rollback to previous production" if version is None else "rollback"
    registry, registered = None, None
    if settings.mlflow:
        from marketpredictor_train.tracking import Registry

        # The target is checked (exit 3 when unknown) before the registry is asked for its
        # model version, which the history then records.
        target = store.get(version if version is not None else store.previous_production())
        registry = Registry(settings)
        registered = registry.ensure(target)
        version = target.version
    record = store.rollback(version, reason=reason, registered=registered)
    if record is None:
        assert version is not None  # the previous production model is never the current one
        model = store.get(version)
        status = registry.sync(store) if registry is not None else None
        return RollbackResult(
            record=None, model=model, hook=None, status="unchanged", registry=status
        )
    model = store.get(record.to_version)
    status = registry.sync(store) if registry is not None else None
    warnings: tuple[str, ...] = (
        (registry.warning,) if registry is not None and registry.warning else ()
    )
    if model.gate_passed is False:
        warned = (
            f"Version {model.version} did not pass the promotion gate when it was trained "
            f"({model.gate_reason}); it is production now because you asked for it"
        )
        log.warning(warned)
        warnings = (*warnings, warned)
    hook = run_post_promote_hook(settings, record)
    result = RollbackResult(
        record=record, model=model, hook=hook, registry=status, warnings=warnings
    )
    if not hook.ok:
        raise PostPromoteHookFailed(hook, result=result)
    return result


def prune_models(settings: Settings, keep: int) -> PruneResult:
    """Keep the newest ``keep`` non-production versions and delete the rest."""
    from marketpredictor_train.store import ModelStore

    store = ModelStore(settings.models_dir)
    removed = store.prune(keep)
    production = store.production()
    prod_version = production.version if production else None
    kept = tuple(v for v in store.version_names() if v != prod_version)
    return PruneResult(keep=keep, removed=tuple(removed), kept=kept, production=prod_version)


def list_models(settings: Settings, *, prune: int | None = None) -> ModelsListing:
    """Everything in the store; with ``prune``, prune to that many versions first."""
    from marketpredictor_train.store import ModelStore

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


def version_names(models_dir: Path) -> list[str]:
    """Versions in a store folder, newest first, from the listing alone (shell completion)."""
    from marketpredictor_train.store.names import list_version_names

    return list_version_names(Path(models_dir))
