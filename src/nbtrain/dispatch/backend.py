"""The seam between a run and where its workers execute (like an HTTP client's transport).

Everything above this module (the run session, its lifecycle rows, lease and ingest) is the
same for every backend. A backend only knows how to *start* one worker and hand back a
:class:`WorkerHandle`: file descriptors that carry the worker's wire frames (and, where the
backend has them, its stdout/stderr), a way to ask it to stop, to end it, and to learn how
it ended. The ingest thread reads those descriptors with ``selectors`` whatever produces
them: a subprocess's pipes, or a local pipe that a Ray pump thread fills with batches.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from nbtrain.procinfo import process_alive, process_start_token, this_host

if TYPE_CHECKING:
    from nbtrain.worker.config_file import WorkerConfig

FdKind = Literal["telemetry", "stdout", "stderr"]


class WorkerHandle(ABC):
    """One started worker, as the kernel sees it. Methods are called from several threads."""

    worker_id: str
    #: The worker's own interpreter pid where the backend knows it (for the ``workers`` row).
    pid: int | None
    #: That process's start-time token (``/proc/PID/stat`` field 22), so a reused pid is
    #: never mistaken for the worker.
    pid_start: str | None
    #: The machine the worker runs on.
    host: str
    started_at: float
    #: Set by :meth:`request_stop`: a worker that was asked to stop ends ``stopped``.
    stop_requested: bool

    @abstractmethod
    def fds(self) -> dict[int, FdKind]:
        """Readable descriptors the ingest thread drains until EOF (it makes them
        non-blocking and gives each back through :meth:`close_fd`)."""

    @abstractmethod
    def close_fd(self, fd: int) -> None:
        """Close one descriptor from :meth:`fds` (after EOF, or when the worker is reaped)."""

    @abstractmethod
    def poll(self) -> int | None:
        """The exit code once the worker has ended (negative: killed by that signal)."""

    @abstractmethod
    def request_stop(self) -> None:
        """Ask politely: the worker finishes its step, sends what it holds and ends."""

    @abstractmethod
    def stop(self, timeout: float) -> int:
        """Ask, then terminate, then kill, within ``timeout``; returns the exit code."""

    @abstractmethod
    def close_control(self) -> None:
        """Release the control channel once the worker is reaped."""

    def failure_reason(self) -> str | None:
        """Why the worker ended without reporting its end, when the backend knows better
        than an exit code (e.g. Ray's reason for a dead actor or node)."""
        return None

    def acknowledge(self, episodes: int) -> None:  # noqa: B027 - optional hook
        """Tell the worker its episodes before ``episodes`` are committed (it then writes
        the checkpoints that follow them). Called from the store's writer thread: must not
        block. A backend without a control channel does nothing; its workers write a
        checkpoint once its episodes are sent."""


class Backend(ABC):
    """Starts workers somewhere. Instances may be shared by several runs."""

    name: ClassVar[str]

    @abstractmethod
    def start(
        self, *, run_id: str, worker_id: str, config_path: Path, config: WorkerConfig, cwd: str
    ) -> WorkerHandle:
        """Start one worker of ``config`` (also written to ``config_path`` as the record of
        what it ran). Raises on failure; nothing of that worker is left running then."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the backend holds once no run uses it."""


def resolve_backend(backend: str | Backend | None) -> Backend:
    """``"local"`` (default), ``"ray"`` or a :class:`Backend` instance."""
    if backend is None or backend == "local":
        from nbtrain.dispatch.process import LocalBackend

        return LocalBackend()
    if backend == "ray":
        from nbtrain.dispatch.ray_backend import RayBackend

        ray_backend: Backend = RayBackend()
        return ray_backend
    if isinstance(backend, Backend):
        return backend
    raise ValueError(
        f"backend must be 'local', 'ray' or a nbtrain Backend instance, not {backend!r}"
    )


__all__ = [
    "Backend",
    "FdKind",
    "WorkerHandle",
    "process_alive",
    "process_start_token",
    "resolve_backend",
    "this_host",
]
