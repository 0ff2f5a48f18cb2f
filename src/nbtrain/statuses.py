"""The status words of workers and runs: one home for Python (the widgets read them too).

A worker is ``pending`` until its process starts, ``running`` while it may still write, and
ends ``completed``, ``failed`` or ``stopped``. A run's status is derived from its workers'
(:func:`run_status_of`). The words are plain strings because they are stored in SQLite,
sent on the wire (``nbtrain.wire.events.WorkerStatus``) and shown to users as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

PENDING: Final = "pending"
RUNNING: Final = "running"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
STOPPED: Final = "stopped"

# A worker (or run) in one of these may still write rows.
LIVE_STATUSES: Final = frozenset({PENDING, RUNNING})
# A worker in one of these has ended for good.
FINAL_STATUSES: Final = frozenset({COMPLETED, FAILED, STOPPED})
# Every status a ``workers`` or ``runs`` row may hold.
WORKER_STATUSES: Final = LIVE_STATUSES | FINAL_STATUSES


def run_status_of(statuses: Iterable[str]) -> str:
    """Return the status of a run whose workers have ``statuses``.

    Parameters
    ----------
    statuses
        Each worker's status.

    Returns
    -------
    str
        ``running`` while any worker may run, else ``failed`` if any failed, else
        ``stopped`` if any stopped, else ``completed`` (also for no workers).

    Examples
    --------
    >>> run_status_of(["completed", "stopped"])
    'stopped'
    """
    values = set(statuses)
    if values & LIVE_STATUSES:
        return RUNNING
    for status in (FAILED, STOPPED):
        if status in values:
            return status
    return COMPLETED


__all__ = [
    "COMPLETED",
    "FAILED",
    "FINAL_STATUSES",
    "LIVE_STATUSES",
    "PENDING",
    "RUNNING",
    "STOPPED",
    "WORKER_STATUSES",
    "run_status_of",
]
