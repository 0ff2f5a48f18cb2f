"""The single writer: one thread per database file per process, shared by all its runs.

Callers queue work and return at once (``create_run`` and ``discard_unfinished_steps`` wait
for their result). The thread lingers up to ``commit_interval`` to gather a batch, then writes
it in one short transaction (steps as chunk rows, see :mod:`nbtrain.store.chunks_write`), so the
write lock is held only while rows go in and other processes' writers wait (busy timeout,
then retry) rather than fail.

Steps and the episode rows queued after them commit together, in queue order, so a reader
never sees an episode without its steps. ``discard_unfinished_steps`` and ``checkpoint`` are
barriers: nothing queued after them is moved before them. A write that fails (a constraint, a bad
value) is retried row by row, logged with ``LOG_SERVICE_SQLITE_WRITE_FAILED`` and counted; it
never stops the writer or loses the other rows.

A storage failure (disk full, I/O error, the file read-only, removed or replaced) or the death
of the thread for any reason stops the writer for good (fail-stop): nothing more is committed,
:attr:`StoreWriter.failure` holds the :class:`~nbtrain.errors.StoreWriteError`, listeners
added with :meth:`StoreWriter.add_failure_listener` are called once, and every later call
(queueing, ``flush``, waits for a result or for room in the queue) raises it at once.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

from nbtrain.errors import StoreError, StoreWriteError
from nbtrain.ids import normalize_worker_id
from nbtrain.log_codes import LOG_SERVICE_SQLITE_CHECKPOINT, LOG_SERVICE_SQLITE_WRITE_FAILED
from nbtrain.logs import log
from nbtrain.statuses import WORKER_STATUSES
from nbtrain.store.batch import BatchWriter
from nbtrain.store.chunks_write import to_json
from nbtrain.store.liveness import discard_unfinished
from nbtrain.store.migrations import ensure_writable
from nbtrain.store.ops import (
    WORKER_FIELDS,
    FailureListener,
    Op,
    check_status,
    notify,
    seconds,
    worker_upsert,
)
from nbtrain.threadprio import lower_this_thread
from nbtrain.wire.events import Event

__all__ = [
    "WORKER_FIELDS",
    "Op",
    "StoreWriter",
    "acquire_writer",
]

T = TypeVar("T")


class StoreWriter:
    """Thread-safe front of the writer thread; get one with :func:`acquire_writer`."""

    def __init__(
        self,
        path: Path,
        *,
        commit_interval: float = 0.1,
        max_pending_rows: int = 100_000,
        max_batch_rows: int = 200_000,
    ) -> None:
        # Past max_pending_rows queued, submitters wait. Queued rows are kernel memory, and
        # the pages a deep queue once filled stay in the kernel's RSS: 100,000 rows is about
        # a quarter second of 4 workers at full speed, and keeps a long run's peak where a
        # short one's is (500,000 let it climb 15 MB; docs/performance.md, ninth pass).
        self.path = path
        self.commit_interval = commit_interval
        self.max_pending_rows = max_pending_rows
        self.max_batch_rows = max_batch_rows
        self._queue: deque[Op] = deque()
        self._cond = threading.Condition()
        self._pending_rows = 0
        self._urgent = 0
        self._refs = 0
        self._closing = False
        self._failure: StoreWriteError | None = None
        self._listeners: list[FailureListener] = []
        self._batch = BatchWriter(path)
        # Serializes turning events into rows (and queueing them) across submitting threads.
        self._prepare_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._main, name=f"nbtrain-store-writer:{path.name}", daemon=True
        )
        self._thread.start()

    # -- counters ---------------------------------------------------------------------------
    @property
    def rows_written(self) -> int:
        return self._batch.rows_written

    @property
    def commits(self) -> int:
        return self._batch.commits

    @property
    def failed_writes(self) -> int:
        return self._batch.failed_writes

    @property
    def busy_retries(self) -> int:
        return self._batch.busy_retries

    @property
    def failure(self) -> StoreWriteError | None:
        """Why the writer stopped for good (a storage failure or its thread died), else None."""
        return self._failure

    def add_failure_listener(self, listener: FailureListener) -> None:
        """Call ``listener(error)`` once when the writer fails: from the writer thread (before
        waiting calls raise), or at once here if it already has. It must return quickly (calls
        waiting for a result wait for it); what it raises is logged."""
        with self._cond:
            failure = self._failure
            if failure is None:
                self._listeners.append(listener)
                return
        notify(listener, failure)

    def remove_failure_listener(self, listener: FailureListener) -> None:
        """Forget a listener (a run that no longer uses this writer); unknown ones are ignored."""
        with self._cond, contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def stats(self) -> dict[str, int]:
        return {
            "rows_written": self.rows_written,
            "commits": self.commits,
            "failed_writes": self.failed_writes,
            "busy_retries": self.busy_retries,
            "pending_rows": self._pending_rows,
        }

    # -- public API -------------------------------------------------------------------------
    def create_run(
        self,
        *,
        run_id: str,
        name: str,
        created_at: float | datetime,
        digest: str,
        config: dict[str, Any],
        status: str = "running",
    ) -> None:
        """Insert the run row; returns once it is committed. A duplicate id is a StoreError."""
        check_status(status, WORKER_STATUSES, "run")
        row = (run_id, name, seconds(created_at), digest, to_json(config), status)

        def call(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO runs(run_id, name, created_at, digest, config, status) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    row,
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"cannot create run {run_id!r}: {exc}") from exc

        self._sync(Op(rows=1, call=call, label=f"create run {run_id}"))

    def upsert_worker(self, run_id: str, worker_id: object, **fields: Any) -> None:
        """Insert or update a worker row (queued). Fields: ``status, pid, exit_code, error,
        started_at, ended_at, traceback, output, pid_start, resumed_from, backend``."""
        wid = normalize_worker_id(worker_id)
        sql = worker_upsert(fields)
        params = (run_id, wid, *fields.values())
        self._submit(Op(rows=1, call=lambda c: c.execute(sql, params), label=f"worker {wid}"))

    @overload
    def call(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        wait: Literal[True] = ...,
        label: str = ...,
    ) -> T: ...

    @overload
    def call(
        self, fn: Callable[[sqlite3.Connection], T], *, wait: Literal[False], label: str = ...
    ) -> None: ...

    def call(
        self, fn: Callable[[sqlite3.Connection], T], *, wait: bool = True, label: str = "call"
    ) -> T | None:
        """Run ``fn(conn)`` in the writer thread, inside a write transaction, in queue order.

        ``fn`` must only run SQL on ``conn`` (no ``BEGIN``/``COMMIT``: it runs in a savepoint,
        so if it raises, its own changes are undone and the rest of the batch commits).
        With ``wait`` this returns ``fn``'s result once it is committed, or raises what ``fn``
        raised; without, it returns at once and a failure is logged and counted like a bad
        row. A storage failure raises :class:`StoreWriteError` either way.
        """
        op = Op(rows=1, call=fn, label=label)
        if wait:
            result: T = self._sync(op)
            return result
        self._submit(op)
        return None

    def set_run_status(self, run_id: str, status: str) -> None:
        check_status(status, WORKER_STATUSES, "run")

        def call(conn: Any) -> None:
            cur = conn.execute("UPDATE runs SET status = ? WHERE run_id = ?", (status, run_id))
            if cur.rowcount == 0:
                raise StoreError(f"no run {run_id!r} to set status {status!r}")

        self._submit(Op(rows=1, call=call, label=f"run status {run_id}"))

    def add_events(self, events: Sequence[Event]) -> None:
        """Queue telemetry; ``Steps`` and ``Episode`` are stored, other events ignored.

        The events are encoded into rows here, in the caller's thread (about 0.4 us a step):
        the queue then holds compact rows, not the events' many short-lived objects.
        """
        op = self.prepare_events(events)
        if op is not None:
            self.submit(op)

    def prepare_events(self, events: Sequence[Event]) -> Op | None:
        """The encoding half of :meth:`add_events` (never blocks); pass the result to
        :meth:`submit`. Submit prepared ops in the order they were prepared."""
        if not events:
            return None
        with self._prepare_lock:
            chunks, episodes, steps = self._batch.prepare(events)
        if not (chunks or episodes):
            return None
        return Op(rows=steps + len(episodes), chunks=chunks, episodes=episodes)

    def submit(self, op: Op) -> None:
        """Queue a prepared op; waits while the writer is too far behind (backpressure)."""
        self._submit(op)

    def discard_unfinished_steps(self, run_id: str, worker_id: object) -> int:
        """Delete steps past the worker's last stored episode; return the next episode index."""
        wid = normalize_worker_id(worker_id)
        batch = self._batch

        def call(conn: Any) -> int:
            return discard_unfinished(conn, run_id, wid)

        op = Op(call=call, barrier=True, label=f"discard {wid}", future=Future(), urgent=True)
        with self._prepare_lock:  # steps queued after this are accepted from any index
            batch.forget(run_id, wid)
            self._submit(op)
        result: int = op.future.result()  # type: ignore[union-attr]
        return result

    def flush(self, timeout: float | None = None) -> None:
        """Return once everything queued before this call is committed."""
        done = threading.Event()
        self._submit(Op(done=done, urgent=True))
        if not done.wait(timeout):
            raise TimeoutError(f"store writer for {self.path} did not commit within {timeout} s")
        self._raise_if_failed()

    def checkpoint(self) -> None:
        """Fold the WAL into the database and truncate it (at run end)."""
        self._sync(Op(call=self._batch.checkpoint, barrier=True, outside_txn=True))

    def release(self) -> None:
        _release(self)

    # -- queue ------------------------------------------------------------------------------
    def _sync(self, op: Op) -> Any:
        op.future = Future()
        op.urgent = True
        self._submit(op)
        return op.future.result()

    def _raise_if_failed(self) -> None:
        failure = self._failure
        if failure is not None:
            raise StoreWriteError(*failure.args) from failure.__cause__

    def _submit(self, op: Op) -> None:
        with self._cond:
            while (
                self._pending_rows > self.max_pending_rows
                and self._failure is None
                and not self._closing
            ):
                self._cond.wait(0.5)  # backpressure: the writer is behind
            self._raise_if_failed()
            if self._closing:
                raise StoreError(f"store writer for {self.path} is closed")
            idle = not self._queue
            self._queue.append(op)
            self._pending_rows += op.rows
            self._urgent += op.urgent
            # Wake the thread only when it must act before its linger deadline: waking it
            # for every small event costs more CPU than writing the event.
            if idle or op.urgent or self._pending_rows >= self._full_rows():
                self._cond.notify_all()

    def _full_rows(self) -> int:
        """Pending rows at which the thread writes at once instead of lingering: a full
        batch, or the backpressure bound (a submitter may be waiting on it)."""
        return min(self.max_batch_rows, self.max_pending_rows)

    def _take(self) -> list[Op]:
        with self._cond:
            while not self._queue:
                self._cond.wait()
            deadline = self._queue[0].enqueued + self.commit_interval
            while (
                not self._urgent
                and self._pending_rows < self._full_rows()
                and (left := deadline - time.monotonic()) > 0
            ):
                self._cond.wait(left)
            ops: list[Op] = []
            rows = 0
            while self._queue and (not ops or rows + self._queue[0].rows <= self.max_batch_rows):
                op = self._queue.popleft()
                ops.append(op)
                rows += op.rows
                self._urgent -= op.urgent
            self._pending_rows -= rows
            self._cond.notify_all()
            return ops

    def _main(self) -> None:
        lower_this_thread()
        ops: list[Op] = []
        try:
            self._batch.open()
            while True:
                ops = self._take()
                self._batch.write(ops)
                if any(op.stop for op in ops):
                    break
                ops = []
        except BaseException as exc:  # fail-stop: a storage failure, or a bug
            self._fail(exc, ops)
        finally:
            self._batch.close()

    def _fail(self, exc: BaseException, taken: list[Op]) -> None:
        """Stop for good: refuse new calls, tell the listeners (once), fail waiting calls."""
        if isinstance(exc, StoreWriteError):
            failure = exc
        else:
            failure = StoreWriteError(f"the store writer for {self.path} stopped: {exc!r}")
            failure.__cause__ = exc
        with self._cond:  # first, so that nothing below can leave calls queued
            self._failure = failure
            ops = [*taken, *self._queue]
            self._queue.clear()
            self._pending_rows = 0
            self._urgent = 0
            listeners, self._listeners = self._listeners, []
            self._cond.notify_all()
        # Called in the except block: exc_info shows the traceback of a bug.
        log(logging.ERROR, LOG_SERVICE_SQLITE_WRITE_FAILED, "%s", failure,
            exc_info=failure is not exc)  # fmt: skip
        for listener in listeners:  # before waking waiters: once a call raises, they know
            notify(listener, failure)
        for op in ops:
            if op.future is not None and not op.future.done():
                op.future.set_exception(failure)
            if op.done is not None:
                op.done.set()

    def _close(self, timeout: float = 30.0) -> None:
        try:
            if self._failure is None:
                self.checkpoint()
        except StoreError:
            if self._failure is None:
                log(logging.WARNING, LOG_SERVICE_SQLITE_CHECKPOINT, "final checkpoint failed")
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._queue.append(Op(stop=True, urgent=True))
            self._urgent += 1
            self._cond.notify_all()
        self._thread.join(timeout)


_writers: dict[Path, StoreWriter] = {}
_writers_lock = threading.Lock()


def acquire_writer(path: str | Path, **options: Any) -> StoreWriter:
    """The process-wide writer for ``path``: created on first use (the file created or
    upgraded, and checked to be writable: :func:`~nbtrain.store.ensure_writable`), or again
    after the previous one failed."""
    resolved = Path(path).expanduser().resolve()
    with _writers_lock:
        writer = _writers.get(resolved)
        if writer is None or writer.failure is not None:
            ensure_writable(resolved)
            writer = StoreWriter(resolved, **options)
            _writers[resolved] = writer
        writer._refs += 1
        return writer


def _release(writer: StoreWriter) -> None:
    with _writers_lock:
        if writer._refs <= 0:
            raise StoreError(f"store writer for {writer.path} released more often than acquired")
        writer._refs -= 1
        if writer._refs:
            return
        if _writers.get(writer.path) is writer:
            del _writers[writer.path]
    writer._close()


@atexit.register
def _close_all() -> None:
    """Commit what is queued when the interpreter exits (e.g. the kernel shuts down)."""
    with _writers_lock:
        writers = list(_writers.values())
        _writers.clear()
    for writer in writers:
        writer._close(timeout=10.0)
