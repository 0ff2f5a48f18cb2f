"""The single writer: one thread per database file per process, shared by all its runs.

Callers queue work and return at once (``create_run`` and ``discard_unfinished_steps`` wait
for their result). The thread lingers up to ``commit_interval`` to gather a batch, then writes
it in one short transaction (steps as chunk rows, see :mod:`nbtrain.store.encode`), so the
write lock is held only while rows go in and other processes' writers wait (busy timeout,
then retry) rather than fail.

Steps and the episode rows queued after them commit together, in queue order, so a reader
never sees an episode without its steps. ``discard_unfinished_steps`` and ``checkpoint`` are
barriers: nothing queued after them is moved before them. A write that fails (a constraint, a bad
value) is retried row by row, logged with ``LOG_SERVICE_SQLITE_WRITE_FAILED`` and counted; it
never stops the writer or loses the other rows.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from nbtrain.errors import StoreError
from nbtrain.ids import normalize_worker_id
from nbtrain.log_codes import LOG_SERVICE_SQLITE_CHECKPOINT, LOG_SERVICE_SQLITE_WRITE_FAILED
from nbtrain.logs import log
from nbtrain.store.batch import BatchWriter
from nbtrain.store.encode import to_json
from nbtrain.store.migrations import migrate
from nbtrain.wire.events import Event

WORKER_FIELDS = frozenset(
    {"status", "pid", "exit_code", "error", "started_at", "ended_at", "traceback", "output"}
)
WORKER_STATUSES = frozenset({"pending", "running", "completed", "failed", "stopped"})
RUN_STATUSES = WORKER_STATUSES


@dataclass
class Op:
    """One queued unit of work. ``call`` runs in the write transaction (or outside it when
    ``outside_txn``); ``chunks`` / ``episodes`` hold telemetry rows; a bare ``done`` marks a
    flush."""

    rows: int = 0
    chunks: list[tuple[Any, ...]] | None = None
    episodes: list[tuple[Any, ...]] | None = None
    call: Callable[[Any], Any] | None = None
    label: str = ""
    future: Future[Any] | None = None
    barrier: bool = False
    outside_txn: bool = False
    done: threading.Event | None = None
    urgent: bool = False
    stop: bool = False
    enqueued: float = field(default_factory=time.monotonic)


def _seconds(value: float | datetime | None) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    return None if value is None else float(value)


class StoreWriter:
    """Thread-safe front of the writer thread; get one with :func:`acquire_writer`."""

    def __init__(
        self,
        path: Path,
        *,
        commit_interval: float = 0.1,
        max_pending_rows: int = 500_000,
        max_batch_rows: int = 200_000,
    ) -> None:
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
        self._dead: BaseException | None = None
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
        _check_status(status, RUN_STATUSES, "run")
        row = (run_id, name, _seconds(created_at), digest, to_json(config), status)

        def call(conn: Any) -> None:
            try:
                conn.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)", row)
            except Exception as exc:
                raise StoreError(f"cannot create run {run_id!r}: {exc}") from exc

        self._sync(Op(rows=1, call=call, label=f"create run {run_id}"))

    def upsert_worker(self, run_id: str, worker_id: object, **fields: Any) -> None:
        unknown = set(fields) - WORKER_FIELDS
        if unknown:
            raise ValueError(
                f"unknown worker field(s) {sorted(unknown)}; allowed: {sorted(WORKER_FIELDS)}"
            )
        if "status" in fields:
            _check_status(fields["status"], WORKER_STATUSES, "worker")
        for key in ("started_at", "ended_at"):
            if key in fields:
                fields[key] = _seconds(fields[key])
        wid = normalize_worker_id(worker_id)
        names = list(fields)
        cols = ", ".join(["run_id", "worker_id", *names])
        marks = ", ".join("?" * (len(names) + 2))
        update = ", ".join(f"{n} = excluded.{n}" for n in names) or "worker_id = worker_id"
        sql = (
            f"INSERT INTO workers({cols}) VALUES ({marks}) "
            f"ON CONFLICT(run_id, worker_id) DO UPDATE SET {update}"
        )
        params = (run_id, wid, *fields.values())
        self._submit(Op(rows=1, call=lambda c: c.execute(sql, params), label=f"worker {wid}"))

    def set_run_status(self, run_id: str, status: str) -> None:
        _check_status(status, RUN_STATUSES, "run")

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
            last = conn.execute(
                "SELECT MAX(ep_index) FROM episodes WHERE run_id = ? AND worker_id = ?",
                (run_id, wid),
            ).fetchone()[0]
            next_index = 0 if last is None else int(last) + 1
            conn.execute(
                "DELETE FROM step_chunks WHERE run_id = ? AND worker_id = ? AND ep_index >= ?",
                (run_id, wid, next_index),
            )
            return next_index

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
        if self._dead is not None:
            raise StoreError(f"store writer for {self.path} died: {self._dead!r}")

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

    def _submit(self, op: Op) -> None:
        with self._cond:
            while self._pending_rows > self.max_pending_rows and not self._dead:
                self._cond.wait(0.5)  # backpressure: the writer is behind
            if self._dead is not None or self._closing:
                raise StoreError(f"store writer for {self.path} is closed")
            idle = not self._queue
            self._queue.append(op)
            self._pending_rows += op.rows
            self._urgent += op.urgent
            # Wake the thread only when it must act before its linger deadline: waking it
            # for every small event costs more CPU than writing the event.
            if idle or op.urgent or self._pending_rows >= self.max_batch_rows:
                self._cond.notify_all()

    def _take(self) -> list[Op]:
        with self._cond:
            while not self._queue:
                self._cond.wait()
            deadline = self._queue[0].enqueued + self.commit_interval
            while (
                not self._urgent
                and self._pending_rows < self.max_batch_rows
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
        try:
            self._batch.open()
            while True:
                ops = self._take()
                self._batch.write(ops)
                if any(op.stop for op in ops):
                    break
        except BaseException as exc:  # pragma: no cover - a bug; fail loudly, never hang
            self._dead = exc
            log(logging.ERROR, LOG_SERVICE_SQLITE_WRITE_FAILED, "store writer died", exc_info=True)
            with self._cond:
                for op in self._queue:
                    if op.future is not None:
                        op.future.set_exception(StoreError(f"store writer died: {exc!r}"))
                    if op.done is not None:
                        op.done.set()
                self._queue.clear()
                self._cond.notify_all()
        finally:
            self._batch.close()

    def _close(self, timeout: float = 30.0) -> None:
        try:
            self.checkpoint()
        except StoreError:
            log(logging.WARNING, LOG_SERVICE_SQLITE_CHECKPOINT, "final checkpoint failed")
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._queue.append(Op(stop=True, urgent=True))
            self._urgent += 1
            self._cond.notify_all()
        self._thread.join(timeout)


def _check_status(status: object, allowed: frozenset[str], what: str) -> None:
    if status not in allowed:
        raise ValueError(f"invalid {what} status {status!r}; allowed: {sorted(allowed)}")


_writers: dict[Path, StoreWriter] = {}
_writers_lock = threading.Lock()


def acquire_writer(path: str | Path, **options: Any) -> StoreWriter:
    """The process-wide writer for ``path`` (created, and the file migrated, on first use)."""
    resolved = Path(path).expanduser().resolve()
    with _writers_lock:
        writer = _writers.get(resolved)
        if writer is None:
            migrate(resolved)
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
        _writers.pop(writer.path, None)
    writer._close()


@atexit.register
def _close_all() -> None:
    """Commit what is queued when the interpreter exits (e.g. the kernel shuts down)."""
    with _writers_lock:
        writers = list(_writers.values())
        _writers.clear()
    for writer in writers:
        writer._close(timeout=10.0)
