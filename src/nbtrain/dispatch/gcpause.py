"""Pausing Python's cyclic GC while a telemetry read is decoded and turned into rows.

Decoding a 100 ms batch allocates one extras dict and one row tuple per step, all alive at
once; each such burst triggers young-generation collections that promote them, which in
turn triggers full collections over every object in the kernel. Measured on the 4-worker
end-to-end benchmark this was about 40 % of the kernel's CPU per stored step. The objects
die by reference counting as soon as the rows are built, so collecting them is pure waste.

The pause is process-wide (CPython has no per-thread switch) but covers only the decoding
and encoding of one read (at most ``READ_CHUNK`` bytes), never a wait; a GC that was off
when a pause began is left off.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
