"""The run sessions of this process: found again by run id (``Run.open`` in the kernel that
owns the run gets the live session), the statuses they hold but could not write shown to
every reader in this process, and their workers stopped when the kernel exits.
"""

from __future__ import annotations

import atexit
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrain.store.liveness import RunFix, add_memory_source

if TYPE_CHECKING:
    from nbtrain.dispatch.session import RunSession

_SESSIONS: weakref.WeakSet[RunSession] = weakref.WeakSet()


def register(session: RunSession) -> None:
    _SESSIONS.add(session)


def live_session(run_id: str, db_path: Path) -> RunSession | None:
    for session in list(_SESSIONS):
        if session.run_id == run_id and session.db_path == db_path:
            return session
    return None


def held_statuses(path: Path, run_id: str | None) -> list[RunFix]:
    """What this process's sessions know but could not write (a failed database)."""
    fixes = []
    for session in list(_SESSIONS):
        if session.db_path == path and run_id in (None, session.run_id):
            fixes.extend(session.held.fixes())
    return fixes


add_memory_source(held_statuses)


@atexit.register
def _stop_all_at_exit() -> None:
    """No worker outlives the kernel: on a normal exit, stop them; on a hard death they see
    EOF on their control pipe and exit by themselves."""
    for session in list(_SESSIONS):
        procs = session.live_procs()
        for proc in procs:
            proc.request_stop()
        for proc in procs:
            proc.stop(timeout=2.0)
