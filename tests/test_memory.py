"""Freed C-heap memory handed back to the system between fits (memory.py)."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

import pytest

from marketpredictor_train import memory


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_freed_heap_memory_goes_back_to_the_system():
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    size = 64 * 1024  # below the mmap threshold: from the heap, kept there when freed
    blocks = [libc.malloc(size) for _ in range(2_000)]  # 125 MB
    for block in blocks:
        libc.memset(block, 1, size)
    pin = libc.malloc(size)  # the heap's top stays in use: free() alone cannot shrink it
    for block in blocks:
        libc.free(block)
    before = _rss_mb()
    memory.hand_back_freed_memory()
    after = _rss_mb()
    libc.free(pin)
    assert before - after > 80


def test_without_malloc_trim_it_does_nothing(monkeypatch):
    class NoTrim:
        def __init__(self, name):
            pass

    memory._malloc_trim.cache_clear()
    monkeypatch.setattr(ctypes, "CDLL", NoTrim)  # a C library without malloc_trim
    try:
        memory.hand_back_freed_memory()  # no AttributeError: nothing to call
        assert memory._malloc_trim() is None
    finally:
        memory._malloc_trim.cache_clear()
