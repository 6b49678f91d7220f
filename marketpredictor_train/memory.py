"""Memory a run has freed, handed back to the operating system.

Model libraries (XGBoost, LightGBM) allocate their working memory with the C library's
``malloc``, much of it from their worker threads. glibc keeps what those threads free in
the threads' own heaps, where it counts against the process until a later allocation
reuses it: after a fit of 1.17M rows about 50 MB of it (measured). ``malloc_trim`` hands
the free pages back; it takes a few milliseconds, so a run calls it between fits."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


def hand_back_freed_memory() -> None:
    """Return the C heap's free pages to the operating system (glibc's ``malloc_trim``);
    nothing where the C library has no such call (macOS, musl)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        # the C library this process already runs on (no search, no `ldconfig` child)
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim
