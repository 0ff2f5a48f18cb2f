"""Where a worker's encoded events go: the telemetry pipe, JSON lines, or a summary.

A sink encodes each event as it is given (:meth:`Sink.send`) and writes what it holds on
:meth:`Sink.push`; the :class:`~nbtrain.worker.emitter.TelemetryEmitter` decides when.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Protocol, TextIO

import msgspec

from nbtrain.wire.codec import FrameEncoder, event_to_json
from nbtrain.wire.events import Ended, Episode, Progress, Started


class TelemetryClosedError(Exception):
    """The reading end of the telemetry pipe is gone: the kernel died, exit quietly."""


class Sink(Protocol):
    """``send`` queues an event (encoded at once, in order); ``push`` writes what is queued.
    ``batches_episodes``: send finished episodes as :class:`Episodes` batches (the kernel's
    wire) rather than one :class:`Episode` each (what a person reads); ``step_rows``: send
    a built-in tabular agent's steps as :class:`StepRows` rather than :class:`Steps`
    columns (the same: the kernel's wire, not what a person reads)."""

    wants_steps: bool
    batches_episodes: bool
    step_rows: bool

    def send(self, event: msgspec.Struct) -> None: ...

    def push(self) -> None: ...

    def pending(self) -> int: ...

    def truncate(self, size: int) -> None: ...


def write_all(fd: int, data: bytes | bytearray) -> None:
    """Write every byte (a pipe write can be partial when a signal lands mid-way)."""
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except BrokenPipeError as exc:
        raise TelemetryClosedError(str(exc)) from exc


# A 64 KiB pipe makes every 100 ms batch wait for the reader; 1 MiB lets it decode at its
# own pace while training goes on (Linux only; the unprivileged maximum by default).
PIPE_SIZE = 1 << 20


def enlarge_pipe(fd: int, size: int = PIPE_SIZE) -> int | None:
    """Grow the pipe behind ``fd`` to ``size`` bytes if the OS allows; returns the new size."""
    try:
        import fcntl

        return fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
    except (ImportError, AttributeError, OSError):
        return None


class _BufferedSink:
    wants_steps = True
    batches_episodes = False
    step_rows = False

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._out = bytearray()

    def pending(self) -> int:
        return len(self._out)

    def truncate(self, size: int) -> None:
        """Drop what was queued after ``pending() == size`` (a batch that failed to encode)."""
        del self._out[size:]

    def push(self) -> None:
        if self._out:
            out, self._out = self._out, bytearray()
            write_all(self.fd, out)


class FrameSink(_BufferedSink):
    """Binary frames onto the telemetry pipe (the normal case, under the dispatcher)."""

    batches_episodes = True
    step_rows = True

    def __init__(self, fd: int) -> None:
        super().__init__(fd)
        self._encoder = FrameEncoder()
        if fd >= 0:  # -1: a subclass delivers the bytes itself (the Ray actor's outbox)
            enlarge_pipe(fd)

    def send(self, event: msgspec.Struct) -> None:
        self._encoder.append(event, self._out)


class JsonLinesSink(_BufferedSink):
    """``--jsonl``: one JSON object per line on the original stdout."""

    def send(self, event: msgspec.Struct) -> None:
        self._out += event_to_json(event)
        self._out += b"\n"


class SummarySink:
    """Run by hand without ``--jsonl``: a short line about once a second and one at the end."""

    wants_steps = False
    batches_episodes = False
    step_rows = False

    def __init__(self, stream: TextIO | None = None, interval: float = 1.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._last_print = 0.0
        self._total = 0.0
        self._count = 0
        self._episodes = 0
        self._last_return: float | None = None
        self._started_at = time.time()

    def pending(self) -> int:
        return 0

    def truncate(self, size: int) -> None:
        pass

    def push(self) -> None:
        pass

    def _print(self, text: str) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):
            print(text, file=self.stream, flush=True)

    def send(self, event: msgspec.Struct) -> None:
        if isinstance(event, Started):
            self._episodes = event.episodes
            self._started_at = event.ts
            self._print(
                f"worker {event.worker_id}: {event.mode} {event.agent} on {event.env_id}, "
                f"episodes {event.start_episode}..{event.episodes - 1}"
            )
        elif isinstance(event, Episode):
            self._total += event.total_reward
            self._count += 1
            self._last_return = event.total_reward
        elif isinstance(event, Progress):
            if event.ts - self._last_print >= self.interval:
                self._last_print = event.ts
                eps = "" if event.epsilon is None else f", epsilon {event.epsilon:.3f}"
                last = "" if self._last_return is None else f", last return {self._last_return:g}"
                self._print(
                    f"worker {event.worker_id}: episode {event.ep_index + 1}/{self._episodes}, "
                    f"{event.steps_done} steps, {event.steps_per_s:.0f} steps/s{eps}{last}"
                )
        elif isinstance(event, Ended):
            mean = f", mean return {self._total / self._count:g}" if self._count else ""
            error = f": {event.error}" if event.error else ""
            self._print(
                f"worker {event.worker_id} {event.status}{error}: {event.episodes_done} "
                f"episodes, {event.steps_done} steps in {event.ts - self._started_at:.1f} s{mean}"
            )
