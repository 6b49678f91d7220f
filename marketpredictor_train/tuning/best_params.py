"""``best_hyperparameters.json``: the tuned parameters a later ``train`` picks up, with
what they were tuned for (model type, data window, label), how well, and in which study.

It lives beside the models (``<models_dir>/best_hyperparameters.json``) and is replaced
atomically, so a ``train`` that starts while ``optimize`` finishes reads the old file or
the new one, never half of one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from marketpredictor_train.fileio import atomic_write_text

if TYPE_CHECKING:
    from marketpredictor_train.config import Settings

log = structlog.get_logger(__name__)

BEST_PARAMS_FILE = "best_hyperparameters.json"
BEST_PARAMS_FORMAT = 1


def best_params_path(settings: Settings) -> Path:
    return Path(settings.models_dir) / BEST_PARAMS_FILE


def write_best_params(path: Path, document: dict[str, Any]) -> Path:
    """Write ``document`` to ``path`` atomically (readers never see half a file)."""
    atomic_write_text(path, json.dumps(document, indent=2) + "\n")
    return path


def read_best_params(path: Path) -> dict[str, Any] | None:
    """The document at ``path``; None when absent. An unreadable or malformed file is
    logged and ignored: training then falls back to the defaults rather than failing."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning(
            "Cannot read the tuned parameters; ignoring them", path=str(path), error=str(exc)
        )
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        log.warning("Malformed tuned-parameters file; ignoring it", path=str(path), error=str(exc))
        return None
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("model_type"), str)
        or not isinstance(document.get("params"), dict)
    ):
        log.warning("Tuned-parameters file lacks model_type or params; ignoring it", path=str(path))
        return None
    return document
