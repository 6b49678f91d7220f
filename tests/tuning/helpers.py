"""Helpers of the tuning tests that run real processes: free ports, `mptrain` workers, and
bounded waits."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mptrain_process(
    args: list[str], *, cwd: Path, env_extra: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.Popen:
    """Start `python -m marketpredictor_train ARGS` as its own process (a farm worker)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MPTRAIN_") or k == "MPTRAIN_CACHE_DIR"
    }
    env.update({"MPTRAIN_MLFLOW": "false", "NO_COLOR": "1", **(env_extra or {})})
    return subprocess.Popen(
        [sys.executable, "-m", "marketpredictor_train", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def wait_for(condition, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll ``condition`` until it returns a truthy value, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
