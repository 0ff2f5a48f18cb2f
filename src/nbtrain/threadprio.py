"""The kernel's busy background threads (telemetry ingest, the SQLite writer) run at a lower
priority than the notebook and the workers.

Bookkeeping should give way to training and to the person at the keyboard. On the 2-core
development machine, at nice +5 those two threads kept up as before, a 1-worker run took
1.101-1.103x a bare loop instead of 1.109-1.120x (the worker was preempted less), and a
notebook cell's p99 latency while 4 workers streamed went from 37.5-40.0 to 25.9-28.3 ms
(``benchmarks/vs_bare.py``, ``benchmarks/kernel_latency.py``, alternated runs).

Linux only: there a thread has its own nice value. Elsewhere ``setpriority`` names a whole
process, so nothing is done.
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["BACKGROUND_NICE", "lower_this_thread"]

BACKGROUND_NICE = 5


def lower_this_thread(step: int = BACKGROUND_NICE) -> bool:
    """Raise the calling thread's nice value by ``step`` (capped at 19); return whether it
    was done. Threads it starts afterwards inherit the value."""
    if not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + step))
    except OSError:  # a sandbox that forbids it: run at the normal priority
        return False
    return True
