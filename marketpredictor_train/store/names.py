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
