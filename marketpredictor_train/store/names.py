"""File names and version names of the model store, cheap enough for shell completion.

A version is the UTC time its model was saved, ``YYYYMMDD_HHMMSS``, with a suffix ``_2``,
``_3``... when several models are saved in the same second. Only names matching
:data:`VERSION_PATTERN` are ever turned into paths, so a version such as ``../x`` can never
reach outside the models folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

VERSION_PATTERN: re.Pattern[str] = re.compile(r"\d{8}_\d{6}(?:_[1-9]\d{0,3})?")
MODEL_PREFIX = "model_"
MODEL_SUFFIX = ".bin"
PROD_FILE_NAME = "prod_model.bin"
# Validation reports live in <models_dir>/reports/<version>/.
REPORTS_DIR_NAME = "reports"
# Files of the store besides the versions and production (history, lock, tuning results,
# the local study and its SQLite companions); a result file must never be written over one.
OWNED_FILE_NAMES = frozenset(
    {
        PROD_FILE_NAME,
        "history.jsonl",
        ".mptrain.lock",
        ".promotion-intent.json",
        "best_hyperparameters.json",
        "optuna.db",
        "optuna.db-journal",
        "optuna.db-wal",
        "optuna.db-shm",
    }
)


def is_version(value: object) -> bool:
    """Whether ``value`` is a well-formed version name (not whether that version exists)."""
    return isinstance(value, str) and VERSION_PATTERN.fullmatch(value) is not None


def model_file_name(version: str) -> str:
    return f"{MODEL_PREFIX}{version}{MODEL_SUFFIX}"


def version_sort_key(version: str) -> tuple[str, int]:
    """Chronological order: ``..._020015`` < ``..._020015_2`` < ``..._020015_10``."""
    date, time, *suffix = version.split("_")
    return (date + time, int(suffix[0]) if suffix else 1)


def list_version_names(models_dir: Path) -> list[str]:
    """Versions present in ``models_dir``, newest first, from the folder listing alone
    (no file is opened)."""
    try:
        entries = os.listdir(models_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    names = []
    for entry in entries:
        if entry.startswith(MODEL_PREFIX) and entry.endswith(MODEL_SUFFIX):
            version = entry[len(MODEL_PREFIX) : -len(MODEL_SUFFIX)]
            if is_version(version):
                names.append(version)
    return sorted(names, key=version_sort_key, reverse=True)


def owned_by_store(models_dir: Path, path: Path) -> bool:
    """Whether ``path`` is (or would be) a file the store in ``models_dir`` owns: a version,
    production, the history, the lock, the tuning files, a temp file of a write in
    progress, or anything under ``reports/``. Links are followed, so another name for one
    of them counts too."""
    try:
        store = Path(models_dir).expanduser().resolve()
        target = Path(path).expanduser().resolve()
        inside = target.relative_to(store)
    except (OSError, RuntimeError, ValueError):
        return False
    parts = inside.parts
    if not parts:
        return True  # the folder itself
    if parts[0] == REPORTS_DIR_NAME:
        return True
    if len(parts) > 1:
        return False
    name = parts[0]
    if name in OWNED_FILE_NAMES or (name.startswith(".") and name.endswith(".tmp")):
        return True
    return name.startswith(MODEL_PREFIX) and name.endswith(MODEL_SUFFIX)


_MODEL_MAGIC = b"MPTRMDL\x00"  # the first bytes of every model file (see modelfile.py)
_STORE_MARKERS = (PROD_FILE_NAME, "history.jsonl", ".mptrain.lock")


def check_result_path(path: Path, models_dir: Path | None = None) -> None:
    """Refuse (:class:`OutputPathError`, exit 3) a result-file path that would overwrite a
    file of a model store: of ``models_dir`` when given, of the folder the path is in when
    that folder is a store, or any existing mptrain model file wherever it lies."""
    from marketpredictor_train.errors import OutputPathError

    target = Path(path).expanduser()
    stores = [Path(models_dir)] if models_dir is not None else []
    parent = target.parent
    if any((parent / marker).exists() for marker in _STORE_MARKERS):
        stores.append(parent)
    if parent.name == REPORTS_DIR_NAME or REPORTS_DIR_NAME in target.parts:
        stores.extend(p for p in target.parents if (p / PROD_FILE_NAME).exists())
    owner = next((store for store in stores if owned_by_store(store, target)), None)
    if owner is None and _is_model_file(target):
        owner = parent
    if owner is not None:
        raise OutputPathError(
            f"Refusing to write the result to {path}: it is a file of the model store "
            f"{owner} (a model version, production, the history, the lock or a report)",
            hint="Choose an --output-json path outside the store's files, e.g. result.json.",
        )


def _is_model_file(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(_MODEL_MAGIC)) == _MODEL_MAGIC
    except OSError:
        return False
