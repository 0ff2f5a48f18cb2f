"""The kernel's side of one worker in a Ray actor: a pump thread per worker turns the actor's
stream of batches into local pipes, so the run's ingest thread reads a Ray worker exactly
like a subprocess; stop asks the actor and, past the timeout, kills it."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from nbtrain.dispatch.backend import FdKind, WorkerHandle

#: The exit code reported when the actor (or its node) died and the worker's own is unknown.
ACTOR_DIED_EXIT_CODE = -signal.SIGKILL
REASON_CHARS = 2000
_KINDS: tuple[FdKind, ...] = ("telemetry", "stdout", "stderr")


class RayWorkerHandle(WorkerHandle):
    """A worker in a Ray actor, seen through local pipes that a pump thread fills."""

    def __init__(
        self,
        ray: Any,
        actor: Any,
        worker_id: str,
        name: str,
        batch: tuple[int, float],
        backpressure: int,
        *,
        info: dict[str, Any] | None = None,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self._ray = ray
        self._actor = actor
        self._on_idle = on_idle
        #: Set by the pump when the worker ended normally and the actor can host another.
        self._reusable = False
        self.worker_id = worker_id
        self.name = name
        # Filled in by the pump once Ray has placed the actor (the worker's Started event
        # also carries its pid).
        self.pid: int | None = None
        self.pid_start: str | None = None
        self.host = ""
        self.started_at = time.time()
        self.stop_requested = False
        self._code: int | None = None
        self._reason: str | None = None
        self._done = threading.Event()
        self._fds: dict[int, FdKind] = {}
        self._sinks: list[int | None] = []
        try:
            for kind in _KINDS:
                read, write = os.pipe()
                self._fds[read] = kind
                self._sinks.append(write)
            self._info = info if info is not None else actor.info.remote()
            self._stream = actor.stream.options(
                _generator_backpressure_num_objects=backpressure
            ).remote(*batch)
        except BaseException:
            self._close_all()
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
            raise
        self._thread = threading.Thread(
            target=self._pump, name=f"nbtrain-ray-pump-{worker_id}", daemon=True
        )
        self._thread.start()

    # -- the pump --------------------------------------------------------------------------
    def _pump(self) -> None:
        ray = self._ray
        code: int | None = None
        try:
            info = self._info if isinstance(self._info, dict) else ray.get(self._info)
            self.pid, self.pid_start, self.host = info["pid"], info["pid_start"], info["host"]
            for ref in self._stream:
                telemetry, stdout, stderr, last = ray.get(ref)
                for index, data in enumerate((telemetry, stdout, stderr)):
                    self._write(index, data)
                if last is not None:
                    code = last
            self._reusable = code == 0  # a failed worker may have left its process unwell
        except ray.exceptions.RayError as exc:
            self._reason = _reason(self.name, exc)
        except Exception as exc:  # the pump must always end the handle
            self._reason = f"nbtrain lost Ray actor {self.name!r}: {type(exc).__name__}: {exc}"
        finally:
            self._close_sinks()
            if code is None:
                self._reason = self._reason or f"Ray actor {self.name!r} ended without an exit code"
                code = ACTOR_DIED_EXIT_CODE
            self._code = code
            self._done.set()

    def _write(self, index: int, data: bytes) -> None:
        """Blocking writes: a slow ingest slows the pump, which pauses the actor's stream."""
        fd = self._sinks[index]
        view = memoryview(data)
        while fd is not None and view:
            try:
                view = view[os.write(fd, view) :]
            except OSError:  # the reader was closed: drop the rest of this stream
                self._sinks[index] = None
                with contextlib.suppress(OSError):
                    os.close(fd)
                return

    def _close_sinks(self) -> None:
        for index, fd in enumerate(self._sinks):
            self._sinks[index] = None
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _close_all(self) -> None:
        self._close_sinks()
        for fd in list(self._fds):
            self.close_fd(fd)

    # -- WorkerHandle ----------------------------------------------------------------------
    def fds(self) -> dict[int, FdKind]:
        return dict(self._fds)

    def close_fd(self, fd: int) -> None:
        self._fds.pop(fd, None)
        with contextlib.suppress(OSError):
            os.close(fd)

    def poll(self) -> int | None:
        return self._code if self._done.is_set() else None

    def failure_reason(self) -> str | None:
        return self._reason if self._done.is_set() else None

    def _call(self, method: str, *args: object) -> None:
        """Fire and forget, never after Ray shut down (a call would start a new instance)."""
        if self._ray.is_initialized():
            with contextlib.suppress(Exception):
                getattr(self._actor, method).remote(*args)

    def request_stop(self) -> None:
        self.stop_requested = True
        self._call("stop")

    def stop(self, timeout: float) -> int:
        """Ask (the worker's stop flag: what a Stop frame or SIGTERM does to a subprocess);
        if it has not ended within ``timeout`` (a step that never returns), ``ray.kill``
        the actor, and the worker with it."""
        self.request_stop()
        if not self._done.wait(max(timeout, 0.0)):
            self._kill()
        return self._wait()

    def _wait(self) -> int:
        self._done.wait(30.0)
        code = self.poll()
        return ACTOR_DIED_EXIT_CODE if code is None else code

    def _kill(self) -> None:
        kill_actor(self._ray, self._actor)

    def close_control(self) -> None:
        """The worker has ended: keep its actor warm for the next worker if it ended
        normally, else end it (and release the CPUs it reserved) now."""
        keep, self._on_idle = self._on_idle, None
        if keep is not None and self._reusable and self._done.is_set():
            keep()
        else:
            self._kill()


def kill_actor(ray: Any, actor: Any) -> None:
    if ray.is_initialized():
        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)


def _reason(name: str, exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if len(text) > REASON_CHARS:
        text = text[:REASON_CHARS] + "..."
    return f"Ray actor {name!r} died ({type(exc).__name__}): {text}"
