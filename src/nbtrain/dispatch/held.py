"""Status rows a run's owner decided but its database refused (disk full, file read-only).

They are held here rather than dropped: readers in this process see them (through
:func:`fixes`, a memory source of :mod:`nbtrain.store.liveness`), the lease thread retries
them until the file takes writes again, and a worker that did not complete also loses its
unfinished steps in that same transaction, so that no row the database keeps lies.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from nbtrain.errors import StoreError
from nbtrain.store.liveness import RunFix, discard_unfinished

if TYPE_CHECKING:
    from nbtrain.store.writer import StoreWriter


def update_worker(conn: sqlite3.Connection, run_id: str, worker_id: str, **fields: Any) -> None:
    names = list(fields)
    sets = ", ".join(f"{n} = ?" for n in names)
    conn.execute(
        f"UPDATE workers SET {sets} WHERE run_id = ? AND worker_id = ?",
        (*fields.values(), run_id, worker_id),
    )


class HeldRows:
    """One run's held rows: each worker's latest fields, and the run's final status."""

    def __init__(self, run_id: str, db_path: Path) -> None:
        self.run_id = run_id
        self.db_path = db_path
        self._lock = threading.Lock()
        self._workers: dict[str, dict[str, Any]] = {}
        self._run_status: str | None = None

    def has_workers(self) -> bool:
        return bool(self._workers)

    def hold(self, worker_id: str, fields: dict[str, Any]) -> None:
        with self._lock:
            self._workers[worker_id] = dict(fields)

    def forget(self, worker_id: str) -> None:
        """Drop the worker's held row: it was started again (its ``running`` row is
        committed), so the held end must never be written over it."""
        with self._lock:
            self._workers.pop(worker_id, None)
            self._run_status = None

    def hold_run(self, status: str) -> None:
        with self._lock:
            self._run_status = status

    def flush(self, writer: StoreWriter | None) -> None:
        """Commit the held worker rows through ``writer`` if it works, else leave them to
        :meth:`retry`."""
        with self._lock:
            rows = dict(self._workers)
        if writer is None or writer.failure is not None or not rows:
            return
        run_id = self.run_id

        def commit(conn: sqlite3.Connection) -> None:
            for wid, fields in rows.items():
                update_worker(conn, run_id, wid, **fields)

        try:
            writer.call(commit, label=f"run {run_id} held rows")
        except (StoreError, TimeoutError):
            return
        self._forget(rows, None)

    def retry(self) -> bool:
        """Commit every held row on a connection of its own (the writer stops for good after
        a storage failure); True once nothing is held."""
        with self._lock:
            rows, run_status = dict(self._workers), self._run_status
        if not rows and run_status is None:
            return True
        try:  # mode=rw: a database that was removed is not made again, empty
            conn = sqlite3.connect(
                f"file:{quote(str(self.db_path))}?mode=rw", uri=True, timeout=0.1,
                isolation_level=None,
            )  # fmt: skip
        except sqlite3.Error:
            return False
        try:
            conn.execute("BEGIN IMMEDIATE")
            for wid, fields in rows.items():
                update_worker(conn, self.run_id, wid, **fields)
                if fields.get("status") != "completed":
                    discard_unfinished(conn, self.run_id, wid)
            if run_status is not None:
                conn.execute(
                    "UPDATE runs SET status = ? WHERE run_id = ?", (run_status, self.run_id)
                )
            conn.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            return False
        finally:
            conn.close()
        self._forget(rows, run_status)
        return True

    def _forget(self, rows: dict[str, dict[str, Any]], run_status: str | None) -> None:
        """Drop what was committed (a row held again meanwhile is newer: kept)."""
        with self._lock:
            for wid, fields in rows.items():
                if self._workers.get(wid) == fields:
                    del self._workers[wid]
            if run_status is not None and self._run_status == run_status:
                self._run_status = None

    def fixes(self) -> list[RunFix]:
        """The held statuses as corrections for readers of the file."""
        with self._lock:
            held = {w: dict(f) for w, f in self._workers.items()}
            run_status = self._run_status
        fixes = []
        for status in {str(f.get("status")) for f in held.values()}:
            errors = {
                w: str(f.get("error") or "") for w, f in held.items() if f.get("status") == status
            }
            fixes.append(RunFix(self.run_id, run_status or "running", errors, status=status))
        if run_status is not None and not held:
            fixes.append(RunFix(self.run_id, run_status, {}))
        return fixes
