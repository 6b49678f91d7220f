"""The model store's inter-process lock, taken around every change of production or history.

It is an OS-level ``flock`` on ``models/.mptrain.lock`` (via filelock): the kernel releases
it when the holding process exits or crashes, so a killed run never leaves a stale lock.
A waiter gives up after a timeout with a :class:`StoreError` that says what to check.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from marketpredictor_train.errors import StoreError

LOCK_FILE_NAME = ".mptrain.lock"
DEFAULT_LOCK_TIMEOUT_S = 60.0


class StoreLock:
    """The lock of one models folder; re-entrant within a thread (nested blocks nest)."""

    def __init__(self, models_dir: Path, timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.path = Path(models_dir) / LOCK_FILE_NAME
        self.timeout = timeout
        self._lock = FileLock(self.path, timeout=timeout)

    @contextmanager
    def hold(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the lock for the block, waiting at most ``timeout`` seconds (default: the
        lock's own)."""
        wait = self.timeout if timeout is None else timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=wait)
        except Timeout as exc:  # first: filelock's Timeout is an OSError too
            raise StoreError(
                f"Another mptrain process has held the model store lock {self.path} "
                f"for more than {wait:g}s",
                hint="Wait for the other training or rollback to finish. The lock is released "
                "automatically when that process exits; a leftover lock file is harmless.",
            ) from exc
        except OSError as exc:  # a read-only or immutable folder: name the lock file
            if exc.filename is not None or exc.errno is None:
                raise
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc
        try:
            yield
        finally:
            self._lock.release()
