"""In-memory pipes for a worker that runs inside a Ray actor's process.

A subprocess worker writes its telemetry and stdout/stderr into OS pipes that the kernel
reads. Inside an actor there is no process boundary to cross: the worker's frame sink and
the process's ``sys.stdout``/``sys.stderr`` append to an :class:`Outbox` instead, and the
actor's streaming generator takes its contents out in batches. Like a pipe, it blocks the
writer once it holds ``limit`` bytes (backpressure reaches the training loop), and a writer
whose reader is gone gets :class:`TelemetryClosedError`, so the worker ends quietly as it
does when its kernel dies.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from typing import Any

from nbtrain.worker.sinks import PIPE_SIZE, FrameSink, TelemetryClosedError

TELEMETRY, STDOUT, STDERR = 0, 1, 2

#: One batch: telemetry, stdout and stderr bytes, and the worker's exit code once it ended
#: and everything before it was taken.
Batch = tuple[bytes, bytes, bytes, int | None]


class Outbox:
    """Three byte streams from the worker's threads to one reader, with a size limit."""

    def __init__(self, limit: int = PIPE_SIZE) -> None:
        self.limit = limit
        self._parts = (bytearray(), bytearray(), bytearray())
        self._cond = threading.Condition()
        self._code: int | None = None
        self._ended = False
        self._closed = False

    def put(self, index: int, data: bytes | bytearray) -> None:
        """Append ``data`` to stream ``index``; waits while the outbox is full (a full pipe).
        Raises :class:`TelemetryClosedError` once the reader has gone."""
        if not data:
            return
        with self._cond:
            while self._size() >= self.limit and not self._closed:
                self._cond.wait()
            if self._closed:
                raise TelemetryClosedError("the reader of this worker's output is gone")
            self._parts[index].extend(data)
            self._cond.notify_all()

    def end(self, code: int) -> None:
        """The worker has ended with exit code ``code``: nothing more will be put."""
        with self._cond:
            self._code = code
            self._ended = True
            self._cond.notify_all()

    def close(self) -> None:
        """The reader is gone: writers blocked now, or later, get TelemetryClosedError."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take(self, batch_bytes: int, batch_seconds: float) -> Batch | None:
        """The next batch: once telemetry holds ``batch_bytes``, or ``batch_seconds`` after
        the first byte arrived, or at the end. None after the last batch was taken."""
        with self._cond:
            while not self._size() and not self._ended:
                self._cond.wait()
            if not self._size() and self._code is None:
                return None  # the last batch, with the code, was taken already
            first = time.monotonic()
            deadline = first + batch_seconds
            while len(self._parts[TELEMETRY]) < batch_bytes and not self._ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            out = tuple(bytes(part) for part in self._parts)
            for part in self._parts:
                part.clear()
            code = None
            if self._ended:
                code, self._code = self._code, None
            self._cond.notify_all()  # writers waiting for room
        return (out[0], out[1], out[2], code)

    def _size(self) -> int:
        return sum(len(part) for part in self._parts)


class OutboxSink(FrameSink):
    """The worker's frame sink, writing into the outbox's telemetry stream instead of a pipe
    (the same frames, encoder and episode batching as :class:`FrameSink`)."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__(-1)
        self.outbox = outbox

    def push(self) -> None:
        if self._out:
            out, self._out = self._out, bytearray()
            self.outbox.put(TELEMETRY, out)


class _OutboxBytes(io.BufferedIOBase):
    """The binary side of a captured stream (``sys.stdout.buffer``)."""

    def __init__(self, outbox: Outbox, index: int) -> None:
        super().__init__()
        self._outbox = outbox
        self._index = index

    @property
    def name(self) -> str:
        return ("<telemetry>", "<stdout>", "<stderr>")[self._index]

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raw = bytes(data)
        # Nobody reads the output any more: drop it, as a closed pipe would.
        with contextlib.suppress(TelemetryClosedError):
            self._outbox.put(self._index, raw)
        return len(raw)


def capture(outbox: Outbox, index: int) -> io.TextIOWrapper:
    """A text stream to stand in for ``sys.stdout`` (``index=STDOUT``) or ``sys.stderr``:
    everything written reaches the outbox at once (no buffering to lose at the end)."""
    return io.TextIOWrapper(
        _OutboxBytes(outbox, index),
        encoding="utf-8",
        errors="backslashreplace",
        write_through=True,
    )
