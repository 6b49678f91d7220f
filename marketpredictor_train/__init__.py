"""marketpredictor-train: train, tune, validate, version, promote and roll back
MarketPredictor's stock-direction models."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

try:
    __version__ = _dist_version("marketpredictor-train")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
