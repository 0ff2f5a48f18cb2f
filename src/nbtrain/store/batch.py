"""Writing one batch of queued ops: the writer thread's side of :mod:`nbtrain.store.writer`.

Two connections to the same file, used one after the other by the writer thread: an ADBC
connection whose only job is Arrow bulk ingest of steps (about 1.5x ``executemany``), and a
``sqlite3`` connection for everything else and for the row-by-row fallback.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrain.ids import normalize_worker_id
from nbtrain.log_codes import (
    LOG_SERVICE_SQLITE_BUSY_RETRY,
    LOG_SERVICE_SQLITE_CHECKPOINT,
    LOG_SERVICE_SQLITE_WRITE_FAILED,
)
from nbtrain.logs import log
from nbtrain.store import schema
from nbtrain.store.encode import (
    INSERT_EPISODE,
    INSERT_STEP,
    episode_row,
    steps_table,
    table_rows,
)
from nbtrain.wire.events import Episode, Steps

if TYPE_CHECKING:
    import pyarrow as pa

    from nbtrain.store.writer import Op


def is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED from either driver (the busy timeout already expired)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (5, 6)
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text or "sqlite_busy" in text


class _Rows:
    """A run of rows inserted with one statement (episodes, or steps on the slow path)."""

    def __init__(self, sql: str, rows: list[tuple[Any, ...]], label: str) -> None:
        self.sql, self.rows, self.label = sql, rows, label


class BatchWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows_written = 0
        self.commits = 0
        self.failed_writes = 0
        self.busy_retries = 0
        self._conn: sqlite3.Connection | None = None
        self._adbc: Any = None
        self.gate = schema.file_gate(path)

    def open(self) -> None:
        with self.gate:
            self._open()

    def _open(self) -> None:
        import adbc_driver_sqlite.dbapi as adbc

        self._conn = schema.connect(self.path)
        self._adbc = adbc.connect(str(self.path), autocommit=True)
        for pragma in (
            f"PRAGMA busy_timeout = {schema.BUSY_TIMEOUT_MS}",
            "PRAGMA synchronous = NORMAL",
            f"PRAGMA journal_size_limit = {schema.JOURNAL_SIZE_LIMIT}",
        ):
            cur = self._adbc.cursor()
            cur.execute(pragma)
            cur.fetchall()
            cur.close()
        # Set on the ADBC handle itself: the DB-API wrapper's commit() is a no-op for a
        # connection opened in autocommit mode (and pragmas like synchronous cannot be set
        # inside a transaction, so the connection must be opened in autocommit mode).
        self._adbc.adbc_connection.set_autocommit(False)

    def close(self) -> None:
        with self.gate:
            self._close()

    def _close(self) -> None:
        for conn in (self._adbc, self._conn):
            if conn is not None:
                with contextlib.suppress(Exception):  # closing is best effort
                    conn.close()
        self._adbc = self._conn = None

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None, "writer connection not open"
        return self._conn

    # -- a batch ----------------------------------------------------------------------------
    def write(self, ops: list[Op]) -> None:
        tables: list[pa.Table] = []
        items: list[_Rows | Op] = []
        for op in ops:
            if op.events:
                self._convert(op, tables, items)
            if op.call is not None:
                if op.outside_txn:
                    self._commit(tables, items)
                    tables, items = [], []
                    self._run_outside(op)
                    continue
                items.append(op)
                if op.barrier:
                    self._commit(tables, items)
                    tables, items = [], []
        self._commit(tables, items)
        for op in ops:
            if op.done is not None:
                op.done.set()

    def _convert(self, op: Op, tables: list[pa.Table], items: list[_Rows | Op]) -> None:
        for event in op.events:
            if not isinstance(event, Steps | Episode):
                continue
            try:
                wid = normalize_worker_id(event.worker_id)
                if isinstance(event, Steps):
                    if len(event):
                        tables.append(steps_table(event, wid))
                    continue
                row = episode_row(event, wid)
            except Exception as exc:
                rows = len(event) if isinstance(event, Steps) else 1
                self._failed(rows, f"{type(event).__name__} event", exc, event.run_id, None)
                continue
            last = items[-1] if items else None
            if isinstance(last, _Rows) and last.sql == INSERT_EPISODE:
                last.rows.append(row)
            else:
                items.append(_Rows(INSERT_EPISODE, [row], "episodes"))

    def _commit(self, tables: list[pa.Table], items: list[_Rows | Op]) -> None:
        if tables:
            with self.gate:
                ingested = self._ingest(tables)
        if tables and not ingested:
            # Bulk ingest refused (a constraint, most likely): redo those rows one by one.
            fallback = [_Rows(INSERT_STEP, table_rows(t), "steps") for t in tables]
            items = [*fallback, *items]
        if items:
            with self.gate:
                self._transaction(items)

    def _ingest(self, tables: list[pa.Table]) -> bool:
        attempt = 0
        while True:
            cur = self._adbc.cursor()
            try:
                for table in tables:
                    cur.adbc_ingest("steps", table, mode="append")
                cur.close()
                self._adbc.adbc_connection.commit()
            except Exception as exc:
                cur.close()
                self._adbc.adbc_connection.rollback()
                if not is_busy(exc):
                    return False
                self._busy(attempt, exc)
                attempt += 1
                continue
            self.commits += 1
            self.rows_written += sum(t.num_rows for t in tables)
            return True

    def _transaction(self, items: list[_Rows | Op]) -> None:
        conn = self.conn
        self._begin()
        written = 0
        outcomes: list[tuple[Op, Any, BaseException | None]] = []
        try:
            for item in items:
                if isinstance(item, _Rows):
                    written += self._insert_rows(item)
                    continue
                conn.execute("SAVEPOINT op")
                try:
                    result = item.call(conn) if item.call is not None else None
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    self._failed(item.rows, item.label, exc, None, None)
                    outcomes.append((item, None, exc))
                else:
                    conn.execute("RELEASE op")
                    written += item.rows
                    outcomes.append((item, result, None))
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            rows = sum(len(i.rows) if isinstance(i, _Rows) else i.rows for i in items)
            self._failed(rows, "transaction", exc, None, None)
            for item in items:
                if not isinstance(item, _Rows) and item.future is not None:
                    item.future.set_exception(exc)
            return
        self.commits += 1
        self.rows_written += written
        for op, result, error in outcomes:
            if op.future is not None:
                if error is None:
                    op.future.set_result(result)
                else:
                    op.future.set_exception(error)

    def _insert_rows(self, item: _Rows) -> int:
        conn = self.conn
        conn.execute("SAVEPOINT rows")
        try:
            conn.executemany(item.sql, item.rows)
        except sqlite3.Error:
            conn.execute("ROLLBACK TO rows")
        else:
            conn.execute("RELEASE rows")
            return len(item.rows)
        conn.execute("RELEASE rows")
        ok, first, bad = 0, None, 0
        for row in item.rows:
            try:
                conn.execute(item.sql, row)
                ok += 1
            except sqlite3.Error as exc:
                if is_busy(exc):
                    raise
                bad += 1
                first = first or (row, exc)
        if first is not None:
            bad_row, error = first
            what = f"{item.label} (first bad row {bad_row[:4]})"
            self._failed(bad, what, error, bad_row[0], bad_row[1])
        return ok

    def _begin(self) -> None:
        attempt = 0
        while True:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                self._busy(attempt, exc)
                attempt += 1

    def _run_outside(self, op: Op) -> None:
        call: Callable[[Any], Any] | None = op.call
        try:
            with self.gate:
                result = call(self.conn) if call is not None else None
        except Exception as exc:
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
        # Called with the gate held once: let in-process readers through while we back off.
        self.gate.release()
        try:
            time.sleep(min(0.01 * 2**attempt, 0.25))
        finally:
            self.gate.acquire()

    def _failed(
        self, rows: int, what: str, exc: BaseException, run_id: Any, worker_id: Any
    ) -> None:
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
