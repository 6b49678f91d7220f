"""Crash-safe file writes: a temp file in the target's folder, fsync, ``os.replace``, then
fsync the folder, so a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

# Temp files are named ``.<target>.<pid>-<host>.<random>.tmp``: whoever cleans up leftovers
# can tell a live writer's file (keep) from one a killed process left behind (remove).
_TEMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)-(?P<host>[0-9a-f]{8})\.[^.]+\.tmp$")


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode(), usedforsecurity=False).hexdigest()[:8]


def _temp_prefix(name: str) -> str:
    return f".{name}.{os.getpid()}-{_host_tag()}."


def temp_file_is_orphaned(path: Path) -> bool:
    """Whether ``path`` is a temp file of ours whose writer, a process on this machine,
    has died (so nothing will ever finish or remove it). A file of a live process, of
    another machine, or not named by :func:`atomic_writer`/:func:`write_temp_file` is not."""
    match = _TEMP_NAME.match(Path(path).name)
    if match is None or match["host"] != _host_tag():
        return False
    pid = int(match["pid"])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. PermissionError: the process exists, as another user
        return False
    return False


@contextlib.contextmanager
def atomic_writer(
    path: Path, mode: str = "wb", *, encoding: str | None = None
) -> Iterator[IO[Any]]:
    """Yield a file to write ``path``'s new content into; it replaces ``path`` only when
    the block finishes without an error (and is removed otherwise)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(
            dir=path.parent, prefix=_temp_prefix(path.name), suffix=".tmp"
        )
    except OSError as exc:
        raise _naming(exc, path) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; what we write is meant to be read by other users too.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _naming(exc, path) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_writer(path) as fh:
        fh.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_writer(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_temp_file(folder: Path, name: str, data: bytes) -> Path:
    """A fully written, fsynced hidden temp file in ``folder`` (same filesystem as its
    target), for callers that give it its final name themselves (e.g. with a hard link).

    The name starts with a dot and ends in ``.tmp`` so folder listings skip it."""
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=_temp_prefix(name), suffix=".tmp")
    except OSError as exc:
        raise _naming(exc, Path(folder) / name) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _naming(exc, Path(folder) / name) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` naming the file being written (a failed ``write`` names none, and a temp
    file's name would mean nothing to the reader)."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


def fsync_dir(folder: Path) -> None:
    """Persist a folder's entries (renames, links, unlinks); a no-op where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # e.g. some network filesystems refuse it
            os.fsync(fd)
    finally:
        os.close(fd)
