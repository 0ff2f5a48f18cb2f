"""The kernel's I/O thread for one run: drains every worker pipe, decodes telemetry, feeds the
store writer and the live hub, and reaps workers.

One thread per run multiplexes all its pipes with ``selectors``, so stdout/stderr are always
drained (a chatty worker never blocks) and the notebook's main thread never touches a pipe.
Malformed telemetry from one worker is counted and logged; ingest of the others goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nbtrain.dispatch.gcpause import gc_paused
from nbtrain.errors import StoreError, WireError
from nbtrain.live.hub import RunLive
from nbtrain.log_codes import (
    LOG_SERVICE_RUN_INGEST_FAILED,
    LOG_SERVICE_SQLITE_DESERIALIZATION_FAILED,
)
from nbtrain.logs import log
from nbtrain.threadprio import lower_this_thread
from nbtrain.wire.codec import FrameDecoder
from nbtrain.wire.events import Ended, Event, Started

if TYPE_CHECKING:
    from nbtrain.dispatch.backend import FdKind, WorkerHandle
    from nbtrain.store.writer import Op, StoreWriter

OUTPUT_TAIL_BYTES = 64 * 1024
# Small reads keep each decode short: the notebook waits for the GIL while one runs.
READ_CHUNK = 1 << 16
# A worker whose process exited but whose pipes stay open (an agent's child holds them)
# is finalized after this grace period.
EXIT_GRACE_S = 2.0
# Workers are polled for their exit at most this often: after every read, the waitpid calls
# were 8 % of the thread's CPU with 4 FrozenLake workers (py-spy on a real run).
REAP_EVERY_S = 0.05


@dataclass(eq=False)
class WorkerStream:
    """Ingest-side state of one worker process."""

    proc: WorkerHandle
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    # fd -> "telemetry" | "stdout" | "stderr", for the fds still open
    open_fds: dict[int, FdKind] = field(default_factory=dict)
    ended: Ended | None = None
    malformed: int = 0
    exit_code: int | None = None
    exited_at: float | None = None
    finalized: threading.Event = field(default_factory=threading.Event)
    # Rows that could not be stored (the writer had failed), and a kernel-side error.
    dropped: int = 0
    internal_error: str | None = None

    @property
    def worker_id(self) -> str:
        return self.proc.worker_id


@dataclass(frozen=True)
class Outcome:
    status: str
    exit_code: int
    error: str | None
    traceback: str | None


def final_status(stream: WorkerStream, exit_code: int) -> Outcome:
    """How a worker ended, from its own report, what we asked of it, and its exit code.

    A worker ended by ``stop()`` is ``stopped`` whatever its exit code, unless it had already
    completed; one that vanished without an ``Ended`` event (crash, SIGKILL, OOM) failed.
    """
    ended = stream.ended
    if stream.internal_error is not None:
        return Outcome("failed", exit_code, stream.internal_error, None)
    stderr_tail = bytes(stream.stderr[-8192:]).decode("utf-8", "replace").strip() or None
    if ended is not None and ended.status == "completed" and exit_code == 0:
        return Outcome("completed", exit_code, None, None)
    if stream.proc.stop_requested:
        return Outcome("stopped", exit_code, None, None)
    if ended is not None and ended.status == "failed":
        return Outcome("failed", exit_code, ended.error, ended.traceback or stderr_tail)
    if ended is not None and ended.status == "stopped" and exit_code == 0:
        return Outcome("stopped", exit_code, None, None)
    reason = stream.proc.failure_reason()
    if reason is not None:
        return Outcome("failed", exit_code, reason, stderr_tail)
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        error = f"worker was killed by {name}"
        if -exit_code == signal.SIGKILL:
            error += " (killed from outside, or out of memory)"
    else:
        error = f"worker exited with code {exit_code} without reporting its end"
        if stderr_tail:
            error += ": " + stderr_tail.splitlines()[-1]
    return Outcome("failed", exit_code, error, stderr_tail)


class Ingest:
    """Owns the run's I/O thread; the thread exits when no worker is left to watch."""

    def __init__(
        self,
        run_id: str,
        writer: StoreWriter,
        live: RunLive,
        on_exit: Callable[[WorkerStream, Outcome], None],
    ) -> None:
        self.run_id = run_id
        self.writer = writer
        self.live = live
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._streams: list[WorkerStream] = []
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread: threading.Thread | None = None

    def add(self, proc: WorkerHandle) -> WorkerStream:
        stream = WorkerStream(proc)
        fds = proc.fds()
        with self._lock:
            for fd, kind in fds.items():
                os.set_blocking(fd, False)
                self._selector.register(fd, selectors.EVENT_READ, stream)
                stream.open_fds[fd] = kind
            self._streams.append(stream)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name=f"nbtrain-ingest-{self.run_id}", daemon=True
                )
                self._thread.start()
        self._wake()
        return stream

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

    def _loop(self) -> None:
        lower_this_thread()
        reaped = 0.0
        while True:
            with self._lock:
                if not self._streams:
                    self._thread = None
                    return
            for key, _ in self._selector.select(timeout=0.1):
                if key.data is None:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                    continue
                try:
                    self._read(key.data, key.fd)
                except Exception as exc:  # never let one worker's trouble end the thread
                    self._broken(key.data, exc)
                time.sleep(0)  # hand the GIL to the notebook between reads
            now = time.monotonic()
            if now - reaped < REAP_EVERY_S:
                continue
            reaped = now
            try:
                self._reap()
            except Exception as exc:
                log(logging.ERROR, LOG_SERVICE_RUN_INGEST_FAILED, "reaping failed: %r", exc,
                    run_id=self.run_id, exc_info=True)  # fmt: skip
                time.sleep(0.1)

    def _broken(self, stream: WorkerStream, exc: BaseException) -> None:
        """A bug or an unexpected error while handling a worker's output: record it as the
        worker's error and ask it to stop; the thread goes on draining and reaping."""
        if stream.internal_error is None:
            stream.internal_error = f"the kernel could not handle the worker's telemetry: {exc!r}"
            log(logging.ERROR, LOG_SERVICE_RUN_INGEST_FAILED, "%s", stream.internal_error,
                run_id=self.run_id, worker_id=stream.worker_id, exc_info=True)  # fmt: skip
            with contextlib.suppress(Exception):
                stream.proc.request_stop()

    def _read(self, stream: WorkerStream, fd: int) -> None:
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_fd(stream, fd)
            return
        kind = stream.open_fds[fd]
        if kind == "telemetry":
            self._telemetry(stream, lambda: stream.decoder.feed(data))
        else:
            out = stream.stdout if kind == "stdout" else stream.stderr
            out += data
            if len(out) > OUTPUT_TAIL_BYTES:
                del out[: len(out) - OUTPUT_TAIL_BYTES]

    def _telemetry(
        self, stream: WorkerStream, decode: Callable[[], list[Event | WireError]]
    ) -> None:
        # Only decoding and encoding run with the GC paused: submitting can wait for a
        # writer that is behind, and the pause is process-wide.
        with gc_paused():
            events = self._accept(stream, decode())
            op = self.writer.prepare_events(events)
        self._deliver(stream, events, op)

    def _accept(self, stream: WorkerStream, items: list[Event | WireError]) -> list[Event]:
        """The well-formed events of this worker; malformed ones are counted and logged."""
        events: list[Event] = []
        for item in items:
            if isinstance(item, WireError):
                self._reject(stream, str(item))
                continue
            if item.run_id != self.run_id or item.worker_id != stream.worker_id:
                self._reject(stream, f"a {type(item).__name__} event stamped run "
                             f"{item.run_id!r} worker {item.worker_id!r}")  # fmt: skip
                continue
            events.append(item)
        return events

    def _reject(self, stream: WorkerStream, what: str) -> None:
        """Count a frame that is not this worker's valid telemetry, and log the first few
        (then every thousandth): the stream goes on at the next valid frame."""
        stream.malformed += 1
        if stream.malformed <= 3 or stream.malformed % 1000 == 0:
            log(logging.WARNING, LOG_SERVICE_SQLITE_DESERIALIZATION_FAILED,
                "malformed telemetry from worker (%d so far): %s", stream.malformed, what,
                run_id=self.run_id, worker_id=stream.worker_id)  # fmt: skip

    def _deliver(self, stream: WorkerStream, events: list[Event], op: Op | None) -> None:
        for event in events:
            if isinstance(event, Started):
                # The session committed ``running`` already; this adds what the worker says.
                resumed = getattr(event, "resumed_from", None)
                extra = {"resumed_from": resumed} if resumed else {}
                with contextlib.suppress(StoreError):
                    self.writer.upsert_worker(self.run_id, stream.worker_id, pid=event.pid, **extra)
            elif isinstance(event, Ended):
                stream.ended = event
        if op is not None and op.episodes:
            # Rows are (run_id, worker_id, ep_index, ...) of this worker, in the order it
            # played them: the last is the highest (were it not, the ack would only be low).
            op.acknowledge = (stream.proc.acknowledge, op.episodes[-1][2] + 1)
        if op is not None and self.writer.failure is None:
            try:
                self.writer.submit(op)
            except StoreError:
                # The writer has failed for good and told the session, which stops the run;
                # what the workers still send cannot be stored and is dropped here.
                stream.dropped += op.rows
        elif op is not None:
            stream.dropped += op.rows
        if events:
            self.live.apply_many(events)

    def _close_fd(self, stream: WorkerStream, fd: int) -> None:
        with self._lock:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fd)
            kind = stream.open_fds.pop(fd)
        with contextlib.suppress(OSError):
            stream.proc.close_fd(fd)
        if kind == "telemetry":
            self._telemetry(stream, lambda: list(stream.decoder.close()))

    def _reap(self) -> None:
        with self._lock:
            streams = list(self._streams)
        now = time.monotonic()
        for stream in streams:
            if stream.exit_code is None:
                code = stream.proc.poll()
                if code is None:
                    continue
                stream.exit_code = code
                stream.exited_at = now
            if stream.open_fds and now - (stream.exited_at or now) < EXIT_GRACE_S:
                continue
            for fd in list(stream.open_fds):
                self._close_fd(stream, fd)
            self._finalize(stream, stream.exit_code)

    def _finalize(self, stream: WorkerStream, exit_code: int) -> None:
        stream.proc.close_control()
        outcome = final_status(stream, exit_code)
        with self._lock:
            self._streams.remove(stream)
        try:
            self._on_exit(stream, outcome)
        except Exception:
            log(logging.ERROR, LOG_SERVICE_RUN_INGEST_FAILED, "recording the worker's end failed",
                run_id=self.run_id, worker_id=stream.worker_id, exc_info=True)  # fmt: skip
        finally:
            stream.finalized.set()

    def close(self) -> None:
        """Release the wake pipe and selector once no worker is being watched."""
        with self._lock:
            if self._streams:
                raise RuntimeError("ingest still has live workers")
            self._selector.close()
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
