"""Helpers for the model-store tests: realistic manifests, distinct payloads, and a way to
run code in a separate interpreter (a real process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_manifest(accuracy: float = 0.54, f1: float = 0.53, **extra: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "model_type": "xgb",
        "params": {"n_estimators": 100, "max_depth": 6, "learning_rate": 0.1},
        "payload_format": "xgboost-ubj",
        "feature_spec": [{"name": "rsi", "params": {"window": 14}}],
        "feature_spec_hash": "3f2a9c",
        "feature_columns": ["rsi_14"],
        "label": {"horizon": 1, "dead_band": 0.0},
        "data_window": {"train_start": "2015-01-02", "backtest_end": "2013-12-31"},
        "metrics": {"accuracy": accuracy, "precision": 0.55, "recall": 0.52, "f1": f1},
        "thresholds": {"accuracy": 0.6, "precision": 0.55, "recall": 0.5, "f1": 0.52},
        "library_versions": {"xgboost": "3.0.0"},
        "run_id": "run-test",
    }
    manifest.update(extra)
    return manifest


def payload_for(n: int) -> bytes:
    return f"model-payload-{n}-".encode() * (50 + n)


def run_python(
    code: str,
    *,
    cwd: Path,
    check: bool = False,
    env_extra: dict[str, str] | None = None,
    **kwargs: Any,
):
    """Run ``code`` in a fresh interpreter (a real, separate process) using this package."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
        **kwargs,
    )
