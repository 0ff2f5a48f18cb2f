"""Handing the C heap's free memory back to the OS now and then (glibc only).

A long run streams hundreds of MB through the kernel in buffers larger than Python's small
object allocator takes (64 KiB reads, ~8 KB chunk texts, SQLite's 64 KiB pages), so they
come from glibc's ``malloc``. Freed, they stay in the heap as free chunks between live
ones, which glibc does not return: in a 4-worker run of 20M FrozenLake steps the kernel's
heap held 30-34 MB of live data throughout while its free part grew from 7 to 20 MB, and
the resident size grew with it, from 86 to 102 MB (``benchmarks/kernel_memory.py``).
``malloc_trim(0)`` releases the free pages wherever they are in the heap; the store's
writer thread calls it at most every few seconds, between batches.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

__all__ = ["TRIM_INTERVAL_S", "release_free_memory"]

TRIM_INTERVAL_S = 5.0

_trim: Callable[[int], int] | None = None
_looked = False


def release_free_memory() -> bool:
    """Return the C heap's free pages to the OS (``malloc_trim(0)``); False where the C
    library has no such call (not glibc), True otherwise. Never raises."""
    global _trim, _looked
    if not _looked:
        _looked = True
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                trim = libc.malloc_trim
                trim.argtypes = [ctypes.c_size_t]
                trim.restype = ctypes.c_int
                _trim = trim
            except (OSError, AttributeError):  # musl and others: no malloc_trim
                _trim = None
    if _trim is None:
        return False
    _trim(0)  # (ctypes gives up the GIL for the call)
    return True
