"""marketpredictor-train: train, tune, validate, version, promote and roll back
MarketPredictor's stock-direction models.

``from marketpredictor_train import load_model`` loads a model for prediction (see
:mod:`marketpredictor_train.predictor`); the commands' library functions are in
:mod:`marketpredictor_train.api`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from marketpredictor_train.predictor import LoadedModel, load_model

__all__ = ["LoadedModel", "__version__", "load_model"]

# Resolved on first use, so that `import marketpredictor_train` (and with it every
# `mptrain --help` and shell-completion request) pays for none of them.
_LAZY = {"LoadedModel": "predictor", "load_model": "predictor"}


def __getattr__(name: str) -> object:
    if name == "__version__":
        # importlib.metadata costs tens of milliseconds.
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("marketpredictor-train")
        except PackageNotFoundError:  # running from a source tree that is not installed
            value = "0.0.0"
        globals()["__version__"] = value
        return value
    if name in _LAZY:
        from importlib import import_module

        found = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = found
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
