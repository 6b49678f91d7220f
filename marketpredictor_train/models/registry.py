"""Find model types through the ``marketpredictor_train.model_types`` entry-point group.

Built-ins are registered there exactly as a third-party plugin would be; entry points are
loaded lazily (only the one asked for) and the name list needs no model library at all.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from marketpredictor_train.errors import ConfigError

if TYPE_CHECKING:
    from marketpredictor_train.models.base import ModelType

ENTRY_POINT_GROUP = "marketpredictor_train.model_types"


@cache
def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        previous = found.get(ep.name)
        if previous is not None and previous.value != ep.value:
            raise ConfigError(
                f"Model type '{ep.name}' is registered twice: by {_origin(previous)} "
                f"({previous.value}) and by {_origin(ep)} ({ep.value})",
                hint="Uninstall one of the two packages.",
            )
        found[ep.name] = ep
    return found


def _origin(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else "an unknown package"


def available_model_types() -> dict[str, str]:
    """Model type name -> the package that provides it."""
    return {name: _origin(ep) for name, ep in sorted(_entry_points().items())}


@cache
def get_model_type(name: str) -> type[ModelType]:
    """The class registered under ``name``; ConfigError (exit 3) listing the others."""
    from marketpredictor_train.models.base import ModelType

    eps = _entry_points()
    ep = eps.get(name)
    if ep is None:
        listing = ", ".join(f"{n} ({pkg})" for n, pkg in available_model_types().items())
        raise ConfigError(
            f"Unknown model type '{name}'. Available: {listing or 'none'}",
            hint="Use --model-type with one of those, or install the package that provides it.",
        )
    try:
        cls = ep.load()
    except ImportError as exc:
        raise ConfigError(
            f"Model type '{name}' from {_origin(ep)} cannot be loaded: {exc}",
            hint=f"Install what it needs (missing module: {exc.name or 'unknown'}).",
        ) from exc
    except Exception as exc:  # a broken plugin must not look like a bug of ours
        raise ConfigError(
            f"Model type '{name}' from {_origin(ep)} is broken: {exc!r}",
            hint="Reinstall or upgrade that package, or uninstall it.",
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, ModelType)):
        raise ConfigError(
            f"Entry point '{name}' of {_origin(ep)} ({ep.value}) is not a ModelType subclass"
        )
    if getattr(cls, "name", None) != name:
        raise ConfigError(
            f"Entry point '{name}' of {_origin(ep)} loads a model type named "
            f"'{getattr(cls, 'name', None)}'; the two names must agree"
        )
    return cls
