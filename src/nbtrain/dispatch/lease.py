"""The owner's side of a run's lease: renew it, and take stop requests from other processes.

One daemon thread per process ticks every :data:`TICK_S` for every run this kernel owns:
it renews ``runs.lease_at`` (so readers elsewhere can tell a live owner from a dead one) and
reads ``workers.stop_requested``, which ``Run.open(...).stop()`` in another process sets, and
stops those workers here, where their pipes are. Nothing per step: a few small writes a
second, whatever the run's rate.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import weakref
from typing import TYPE_CHECKING

from nbtrain.errors import StoreError
from nbtrain.log_codes import LOG_SERVICE_RUN_LEASE, LOG_WORKER_STOP_REQUESTED
from nbtrain.logs import log

if TYPE_CHECKING:
    from nbtrain.dispatch.session import RunSession

TICK_S = 0.5


class LeaseKeeper:
    def __init__(self) -> None:
        self._sessions: weakref.WeakSet[RunSession] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def add(self, session: RunSession) -> None:
        with self._lock:
            self._sessions.add(session)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="nbtrain-lease", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            self._wake.wait(TICK_S)
            self._wake.clear()
            if not self._tick_all():
                return

    def _tick_all(self) -> bool:
        """One tick for every session that needs one; False once none does. (A method of
        its own so that no session stays referenced by the sleeping thread.)"""
        with self._lock:
            sessions = [s for s in self._sessions if s.owns_live_workers()]
            if not sessions:
                self._thread = None
                return False
        for session in sessions:
            try:
                self._tick(session)
            except Exception:  # a tick must never end the thread; the next one retries
                log(logging.DEBUG, LOG_SERVICE_RUN_LEASE, "lease tick failed",
                    run_id=session.run_id, exc_info=True)  # fmt: skip
        return True

    def _tick(self, session: RunSession) -> None:
        run_id = session.run_id
        now = time.time()

        def renew(conn: sqlite3.Connection) -> list[str]:
            conn.execute("UPDATE runs SET lease_at = ? WHERE run_id = ?", (now, run_id))
            rows = conn.execute(
                "SELECT worker_id FROM workers WHERE run_id = ? AND stop_requested IS NOT NULL "
                "AND status IN ('pending', 'running')",
                (run_id,),
            ).fetchall()
            return [str(r[0]) for r in rows]

        session.retry_unwritten()
        writer = session.current_writer()
        if writer is None:
            return
        try:
            wanted = writer.call(renew, label=f"lease {run_id}")
        except (StoreError, TimeoutError):
            return
        for wid in wanted or ():
            if session.is_stopping(wid):
                continue
            log(logging.INFO, LOG_WORKER_STOP_REQUESTED, "stop requested by another process",
                run_id=run_id, worker_id=wid)  # fmt: skip
            threading.Thread(
                target=_stop_quietly, args=(session, wid), name=f"nbtrain-stop-{wid}", daemon=True
            ).start()


def _stop_quietly(session: RunSession, worker_id: str) -> None:
    with contextlib.suppress(Exception):
        session.stop(worker_id, timeout=10.0)


_KEEPER = LeaseKeeper()


def keep_lease(session: RunSession) -> None:
    _KEEPER.add(session)
