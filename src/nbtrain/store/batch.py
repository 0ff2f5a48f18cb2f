"""Writing one batch of queued ops: the writer thread's side of :mod:`nbtrain.store.writer`.

One ``sqlite3`` connection and one ``BEGIN IMMEDIATE`` transaction per batch (split only at
barriers): step chunks, episodes and other ops go in in queue order, each run of chunk or
episode rows as multi-row ``INSERT`` statements (:func:`insert_in_bulk`).

Runs of rows go in without a savepoint: a savepoint copies every existing page the run then
changes into a statement journal (a temporary file once it passes 64 KiB, i.e. at the first
64 KiB page), which cost the writer thread a third more bytes written. A bad row (a
constraint) is rare (a worker's duplicate, another writer's row), so when one turns up the
whole transaction is rolled back and redone carefully: a savepoint per run, and a run that
fails is redone row by row, so that only the bad rows are lost.

A storage failure (disk full, I/O error, read-only, the file removed or replaced; see
:func:`nbtrain.store.files.is_storage_error`) is different: the transaction is rolled back
(SQLite may already have done so, so no rollback here assumes a transaction or a savepoint
still exists, and none raises) and :class:`~nbtrain.errors.StoreWriteError` is raised to the
writer, which then stops for good. Nothing is committed after a failure, so no episode row can
be committed without all of its steps.

Events are turned into rows beforehand, in the submitting thread
(:mod:`nbtrain.store.event_rows`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrain.errors import StoreWriteError
from nbtrain.log_codes import (
    LOG_SERVICE_SQLITE_BUSY_RETRY,
    LOG_SERVICE_SQLITE_CHECKPOINT,
    LOG_SERVICE_SQLITE_WRITE_FAILED,
)
from nbtrain.logs import log
from nbtrain.store import files, schema
from nbtrain.store.bulk import BadRowInBulk, Rows, add_rows, insert_in_bulk
from nbtrain.store.event_rows import EventRows, Prepared
from nbtrain.wire.events import Event

if TYPE_CHECKING:
    from nbtrain.store.writer import Op


class BatchWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows_written = 0
        self.commits = 0
        self.failed_writes = 0
        self._count_lock = threading.Lock()  # failures are counted by two threads
        self.busy_retries = 0
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file opened
        self._events = EventRows(self._failed)

    def open(self) -> None:
        try:
            self._conn = schema.connect(self.path)
            self._conn.execute(f"PRAGMA cache_size = -{schema.WRITER_CACHE_KIB}")
            # Read the schema now, so that the file checked below is the one SQLite opened.
            self._conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            st = os.stat(self.path)
        except (sqlite3.Error, OSError) as exc:
            raise files.store_error(exc, self.path, writing=True) from exc
        self._identity = (st.st_dev, st.st_ino)

    def check_file(self) -> None:
        """Raise :class:`StoreWriteError` when the file opened is no longer at its path:
        SQLite would go on writing to the removed file, and every commit would be lost."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise StoreWriteError(
                f"{self.path} was removed while a run was writing to it ({exc.strerror}); "
                "nothing more is written: restart the run"
            ) from exc
        if (st.st_dev, st.st_ino) != self._identity:
            raise StoreWriteError(
                f"{self.path} was replaced by another file while a run was writing to it; "
                "nothing more is written: restart the run"
            )

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing is best effort
                self._conn.close()
        self._conn = None

    def forget(self, run_id: str, worker_id: str) -> None:
        """Accept steps of ``worker_id`` from any point again (its unfinished ones are gone)."""
        self._events.forget(run_id, worker_id)

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None, "writer connection not open"
        return self._conn

    # -- a batch ----------------------------------------------------------------------------
    def write(self, ops: list[Op]) -> None:
        """Write ``ops`` in as few statements as possible: between two calls, all chunk rows
        go in as one run and all episode rows as another (one transaction, so their order
        within it is invisible to readers). Raises :class:`StoreWriteError`
        on a storage failure (the caller stops writing for good)."""
        self.check_file()
        items: list[Rows | Op] = []
        chunks: list[tuple[Any, ...]] = []
        episodes: list[tuple[Any, ...]] = []
        for op in ops:
            if op.chunks:
                chunks.extend(op.chunks)
            if op.episodes:
                episodes.extend(op.episodes)
            if op.call is None:
                continue
            add_rows(items, chunks, episodes)
            chunks, episodes = [], []
            if op.outside_txn:
                self._commit(items)
                items = []
                self._run_outside(op)
                continue
            items.append(op)
            if op.barrier:
                self._commit(items)
                items = []
        add_rows(items, chunks, episodes)
        self._commit(items)
        acks: dict[Callable[[int], None], int] = {}
        for op in ops:
            if op.done is not None:
                op.done.set()
            if op.acknowledge is not None:
                tell, n = op.acknowledge
                acks[tell] = max(n, acks.get(tell, n))
        for tell, n in acks.items():
            tell(n)

    def prepare(self, events: Sequence[Event]) -> Prepared:
        """:meth:`EventRows.prepare <nbtrain.store.event_rows.EventRows.prepare>`."""
        return self._events.prepare(events)

    def _commit(self, items: list[Rows | Op]) -> None:
        if items:
            self._transaction(items)

    def _transaction(self, items: list[Rows | Op]) -> None:
        """Commit ``items`` in one transaction; bad rows and failing calls are left out (and
        reported once committed); a storage failure raises :class:`StoreWriteError`."""
        attempt = 0
        careful = False
        while True:
            failures: list[tuple[int, str, BaseException, Any, Any]] = []
            try:
                self._begin()
                written, outcomes = self._apply(items, failures, careful)
                self.conn.execute("COMMIT")
                break
            except BadRowInBulk:
                self._rollback()
                careful = True
            except BaseException as exc:
                self._rollback()
                if not (isinstance(exc, files.BusyInTransaction) or files.is_busy(exc)):
                    raise self._fatal(exc) from exc
                self._busy(attempt, exc.__cause__ or exc)
                attempt += 1
        self.commits += 1
        self.rows_written += written
        for failure in failures:
            self._failed(*failure)
        for op, result, error in outcomes:
            if op.future is not None and not op.future.done():
                if error is None:
                    op.future.set_result(result)
                else:
                    op.future.set_exception(error)

    def _apply(
        self,
        items: list[Rows | Op],
        failures: list[tuple[int, str, BaseException, Any, Any]],
        careful: bool,
    ) -> tuple[int, list[tuple[Op, Any, BaseException | None]]]:
        conn = self.conn
        written = 0
        outcomes: list[tuple[Op, Any, BaseException | None]] = []
        for item in items:
            if isinstance(item, Rows):
                if careful:
                    written += self._insert_rows(item, failures)
                    continue
                try:
                    insert_in_bulk(conn, item.sql, item.rows)
                except Exception as exc:
                    self._check_bad_row(exc)
                    raise BadRowInBulk from exc
                written += item.total()
                continue
            conn.execute("SAVEPOINT op")
            try:
                result = item.call(conn) if item.call is not None else None
            except Exception as exc:
                self._undo("op", exc)
                failures.append((item.rows, item.label, exc, None, None))
                outcomes.append((item, None, exc))
            else:
                conn.execute("RELEASE op")
                written += item.rows
                outcomes.append((item, result, None))
        return written, outcomes

    def _insert_rows(
        self, item: Rows, failures: list[tuple[int, str, BaseException, Any, Any]]
    ) -> int:
        conn = self.conn
        conn.execute("SAVEPOINT rows")
        try:
            conn.executemany(item.sql, item.rows)
        except Exception as exc:
            self._undo("rows", exc)
        else:
            conn.execute("RELEASE rows")
            return item.total()
        ok, first, bad = 0, None, 0
        for row in item.rows:
            try:
                conn.execute(item.sql, row)
                ok += item.weight(row)
            except Exception as exc:
                self._check_bad_row(exc)
                bad += item.weight(row)
                first = first or (row, exc)
        if first is not None:
            bad_row, error = first
            what = f"{item.label} (first bad row {bad_row[:4]})"
            failures.append((bad, what, error, bad_row[0], bad_row[1]))
        return ok

    def _check_bad_row(self, exc: BaseException) -> None:
        """Return when ``exc`` is a bad row or a failing call and the transaction is still
        there (else the next statement would commit on its own); raise otherwise."""
        files.raise_unless_bad_row(exc)
        if not self.conn.in_transaction:
            raise StoreWriteError(
                f"cannot write {self.path}: SQLite rolled the transaction back ({exc})"
            ) from exc

    def _undo(self, savepoint: str, exc: BaseException) -> None:
        """Undo a savepoint after a bad row or a failing call (see :meth:`_check_bad_row`)."""
        self._check_bad_row(exc)
        self.conn.execute(f"ROLLBACK TO {savepoint}")
        self.conn.execute(f"RELEASE {savepoint}")

    def _rollback(self) -> None:
        """Roll back whatever is left of the transaction; never raises (the failure that got
        us here is what gets reported)."""
        conn = self._conn
        with contextlib.suppress(Exception):
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")

    def _fatal(self, exc: BaseException) -> StoreWriteError:
        if isinstance(exc, StoreWriteError):
            return exc
        if isinstance(exc, sqlite3.Error | OSError):
            error = files.store_error(exc, self.path, writing=True)
            if isinstance(error, StoreWriteError):
                return error
            return StoreWriteError(f"{error}; nothing more is written")
        return StoreWriteError(f"the store writer for {self.path} stopped: {exc!r}")

    def _begin(self) -> None:
        attempt = 0
        while True:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not files.is_busy(exc):
                    raise
                self._busy(attempt, exc)
                attempt += 1

    def _run_outside(self, op: Op) -> None:
        call: Callable[[Any], Any] | None = op.call
        try:
            result = call(self.conn) if call is not None else None
        except Exception as exc:
            if files.is_storage_error(exc):
                raise self._fatal(exc) from exc
            if op.future is not None:
                op.future.set_exception(exc)
            return
        if op.future is not None:
            op.future.set_result(result)

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """TRUNCATE checkpoint; waits at most a second for readers, then gives up politely."""
        conn.execute("PRAGMA busy_timeout = 1000")
        try:
            row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.execute(f"PRAGMA busy_timeout = {schema.BUSY_TIMEOUT_MS}")
        busy, wal_pages, done = (int(v) for v in row)
        level = logging.WARNING if busy else logging.INFO
        log(level, LOG_SERVICE_SQLITE_CHECKPOINT, "checkpoint %s: busy=%s wal=%s moved=%s",
            self.path, busy, wal_pages, done)  # fmt: skip
        return busy, wal_pages, done

    # -- bookkeeping --------------------------------------------------------------------------
    def _busy(self, attempt: int, exc: BaseException) -> None:
        self.busy_retries += 1
        if attempt % 20 == 0:
            log(
                logging.WARNING,
                LOG_SERVICE_SQLITE_BUSY_RETRY,
                "database %s busy (another writer holds it); retrying (attempt %d): %s",
                self.path,
                attempt + 1,
                exc,
            )
        time.sleep(min(0.01 * 2**attempt, 0.25))

    def _failed(
        self, rows: int, what: str, exc: BaseException, run_id: Any, worker_id: Any
    ) -> None:
        with self._count_lock:
            self.failed_writes += rows
        log(
            logging.WARNING,
            LOG_SERVICE_SQLITE_WRITE_FAILED,
            "failed to write %d row(s) of %s to %s: %s",
            rows,
            what,
            self.path,
            exc,
            run_id=run_id if isinstance(run_id, str) else None,
            worker_id=worker_id if isinstance(worker_id, str) else None,
        )
