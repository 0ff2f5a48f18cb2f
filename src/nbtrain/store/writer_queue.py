"""The store writer's queue and thread: batching, backpressure and fail-stop.

:class:`WriterQueue` is the base of :class:`~nbtrain.store.writer.StoreWriter` (a base class,
not a helper object, so that queueing a telemetry batch takes no extra call). Callers append
ops under one condition; the thread lingers up to ``commit_interval`` to gather a batch (and,
while rows keep coming, until ``steady_interval`` after its last commit), then writes it in
one short transaction (:class:`~nbtrain.store.batch.BatchWriter`), so the write
lock is held only while rows go in and other processes' writers wait (busy timeout, then
retry) rather than fail. Past ``max_pending_rows`` queued, submitters wait.

A storage failure (disk full, I/O error, the file read-only, removed or replaced) or the death
of the thread for any reason stops the writer for good (fail-stop): nothing more is committed,
:attr:`WriterQueue.failure` holds the :class:`~nbtrain.errors.StoreWriteError`, listeners
added with :meth:`WriterQueue.add_failure_listener` are called once, and every later call
(queueing, ``flush``, waits for a result or for room in the queue) raises it at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from nbtrain.errors import StoreError, StoreWriteError
from nbtrain.log_codes import LOG_SERVICE_SQLITE_CHECKPOINT, LOG_SERVICE_SQLITE_WRITE_FAILED
from nbtrain.logs import log
from nbtrain.store.batch import BatchWriter
from nbtrain.store.ops import FailureListener, Op, notify
from nbtrain.threadprio import lower_this_thread

__all__ = ["WriterQueue"]


# Batches this large for this long mean rows are streaming in: the next commit waits
# steady_interval. Not from the first one: a run's first episodes may come a read after its
# first steps, and must not wait for a spaced commit (first stored episode, issue 13).
STEADY_ROWS = 2_000
STEADY_AFTER_S = 1.0


class WriterQueue:
    """The queue and the writer thread behind :class:`~nbtrain.store.writer.StoreWriter`."""

    def __init__(
        self,
        path: Path,
        *,
        commit_interval: float = 0.1,
        steady_interval: float = 0.3,
        max_pending_rows: int = 100_000,
        max_batch_rows: int = 200_000,
    ) -> None:
        # Past max_pending_rows queued, submitters wait. Queued rows are kernel memory, and
        # the pages a deep queue once filled stay in the kernel's RSS: 100,000 rows is about
        # a quarter second of 4 workers at full speed, and keeps a long run's peak where a
        # short one's is (500,000 let it climb 15 MB; docs/performance.md, ninth pass).
        self.path = path
        self.commit_interval = commit_interval
        # Commits of a heavy stream are spaced this far apart: each commit rewrites the
        # last, partly filled 64 KiB page of every table and index it touched, so at 0.1 s
        # the writer spent 10.1-10.2 us an episode of 4 FrozenLake workers, at 0.3 s 8.5
        # (the captured stream replayed at its real pace). After small batches, and in the
        # first STEADY_AFTER_S of a heavy stream, rows still go in after commit_interval.
        self.steady_interval = steady_interval
        # Monotonic end of the last write, when the writes of at least STEADY_ROWS rows
        # have gone on for STEADY_AFTER_S (else -inf); the thread's own.
        self._committed = -float("inf")
        self._heavy_since: float | None = None  # start of the current run of large writes
        self.max_pending_rows = max_pending_rows
        self.max_batch_rows = max_batch_rows
        self._queue: deque[Op] = deque()
        self._cond = threading.Condition()
        self._pending_rows = 0
        self._urgent = 0
        self._refs = 0  # acquire_writer's references
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

    # -- barriers ---------------------------------------------------------------------------
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
            deadline = commit_deadline(
                self._queue[0].enqueued, self._committed, self.commit_interval,
                self.steady_interval,
            )  # fmt: skip
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
                self._wrote(sum(op.rows for op in ops), time.monotonic())
                if any(op.stop for op in ops):
                    break
                ops = []
        except BaseException as exc:  # fail-stop: a storage failure, or a bug
            self._fail(exc, ops)
        finally:
            self._batch.close()

    def _wrote(self, rows: int, now: float) -> None:
        """Note a write of ``rows`` ending ``now`` (see :func:`commit_deadline`)."""
        if rows < STEADY_ROWS:
            self._heavy_since, self._committed = None, -float("inf")
            return
        if self._heavy_since is None:
            self._heavy_since = now
        steady = now - self._heavy_since >= STEADY_AFTER_S
        self._committed = now if steady else -float("inf")

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


def commit_deadline(
    enqueued: float, committed: float, commit_interval: float, steady_interval: float
) -> float:
    """When to commit what waits since ``enqueued``, the last commit having ended at
    ``committed``: ``commit_interval`` after it came, but no sooner than ``steady_interval``
    after the last commit (while rows stream in, commits are that far apart)."""
    return max(enqueued + commit_interval, committed + steady_interval)
