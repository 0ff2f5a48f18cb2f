"""The single writer: one thread per database file per process, shared by all its runs.

Callers queue work and return at once (``create_run`` and ``discard_unfinished_steps`` wait
for their result); the thread writes it in batches, steps as chunk rows (see
:mod:`nbtrain.store.chunks_write`). The queue, the thread and fail-stop on a storage failure
are in :mod:`nbtrain.store.writer_queue`; this module is what callers use: the writes and the
process-wide registry (:func:`acquire_writer`, refcounted, closed at interpreter exit).

Steps and the episode rows queued after them commit together, in queue order, so a reader
never sees an episode without its steps. ``discard_unfinished_steps`` and ``checkpoint`` are
barriers: nothing queued after them is moved before them. A write that fails (a constraint, a bad
value) is retried row by row, logged with ``LOG_SERVICE_SQLITE_WRITE_FAILED`` and counted; it
never stops the writer or loses the other rows.
"""

from __future__ import annotations

import atexit
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

from nbtrain.errors import StoreError
from nbtrain.ids import normalize_worker_id
from nbtrain.statuses import WORKER_STATUSES
from nbtrain.store.chunks_write import to_json
from nbtrain.store.liveness import discard_unfinished
from nbtrain.store.migrations import ensure_writable
from nbtrain.store.ops import (
    WORKER_FIELDS,
    Op,
    check_status,
    seconds,
    worker_upsert,
)
from nbtrain.store.writer_queue import WriterQueue
from nbtrain.wire.events import Event

__all__ = [
    "WORKER_FIELDS",
    "Op",
    "StoreWriter",
    "acquire_writer",
]

T = TypeVar("T")


class StoreWriter(WriterQueue):
    """Thread-safe front of the writer thread; get one with :func:`acquire_writer`."""

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
            chunks, episodes, steps, first = self._batch.prepare(events)
        if not (chunks or episodes):
            return None
        return Op(rows=steps + len(episodes), chunks=chunks, episodes=episodes, urgent=first)

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

    def release(self) -> None:
        _release(self)


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
