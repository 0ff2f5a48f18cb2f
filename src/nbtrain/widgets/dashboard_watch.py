"""Keeping a dashboard of a run that another process writes up to date.

A run live in this kernel feeds its dashboard through the live hub. One that another kernel
owns (or a dashboard opened after a kernel restart while the old workers' rows still say
``running``) has only the database: this watcher checks ``PRAGMA data_version`` once a
second and, when another connection has committed, nudges the views to read the run again
(a delta whose sequence number leaves a gap, which the view answers by asking for a new
snapshot: the protocol's own resync). It ends once every worker's status is final, as the
readers report it (a dead owner's workers are reported ``failed``), or when the dashboard
closes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from nbtrain.statuses import FINAL_STATUSES
from nbtrain.store import schema

POLL_S = 1.0


class StoreWatcher:
    """Calls ``nudge()`` after each change another process commits to ``db``, until the
    run's workers have all ended or ``closed`` is set."""

    def __init__(
        self, db: Path, run_id: str, nudge: Callable[[], None], closed: threading.Event
    ) -> None:
        self._db, self._run_id, self._nudge, self._closed = db, run_id, nudge, closed
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.alive:
                return
            self._thread = threading.Thread(
                target=self._main, name=f"nbtrain-dashboard-watch-{self._run_id}", daemon=True
            )
            self._thread.start()

    def join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _main(self) -> None:
        from nbtrain.store import TelemetryStore

        store = TelemetryStore(self._db)
        conn = schema.connect(self._db, readonly=True)
        try:
            version = _data_version(conn)
            while not self._closed.wait(POLL_S):
                now = _data_version(conn)
                final = set(store.workers(self._run_id)["status"]) <= FINAL_STATUSES
                if now != version or final:
                    version = now
                    self._nudge()
                if final:
                    return
        except Exception:  # the file went away, or the run was deleted: nothing to follow
            return
        finally:
            conn.close()


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])
