"""marketpredictor-train: train, tune, validate, version, promote and roll back
MarketPredictor's stock-direction models."""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> object:
    # Resolved on first use: importlib.metadata costs tens of milliseconds, which every
    # `mptrain --help` and every shell-completion request would otherwise pay.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("marketpredictor-train")
        except PackageNotFoundError:  # running from a source tree that is not installed
            value = "0.0.0"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
