"""One worker subprocess and its four pipes.

The worker runs in its own session (``start_new_session``), so Jupyter's SIGINT to the
kernel's process group never reaches it; it learns that the kernel died from EOF on its
control pipe. Telemetry has its own pipe so nothing an agent prints can corrupt it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrain.dispatch.backend import (
    Backend,
    FdKind,
    WorkerHandle,
    process_start_token,
    this_host,
)
from nbtrain.wire.codec import encode_frame
from nbtrain.wire.events import Stop, Stored
from nbtrain.worker.cli import CONTROL_FD_ENV, TELEMETRY_FD_ENV, WORKER_ID_ENV

if TYPE_CHECKING:
    from nbtrain.worker.config_file import WorkerConfig


def worker_command(config_path: Path, worker_id: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nbtrain.worker",
        "--config",
        str(config_path),
        "--worker-id",
        worker_id,
    ]


def spawn_worker(
    command: list[str], worker_id: str, *, cwd: str | None
) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start a worker in its own session with its private pipes.

    Returns the process, the read end of its telemetry pipe and the write end of its control
    pipe; nothing is left open if it cannot start. Shared by the local backend and the Ray
    actor, which runs the same worker the same way on its node."""
    telemetry_r, telemetry_w = os.pipe()
    control_r, control_w = os.pipe()
    env = dict(os.environ)
    env[WORKER_ID_ENV] = worker_id
    env[TELEMETRY_FD_ENV] = str(telemetry_w)
    env[CONTROL_FD_ENV] = str(control_r)
    try:
        popen = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(telemetry_w, control_r),
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    except BaseException:
        for fd in (telemetry_r, telemetry_w, control_r, control_w):
            os.close(fd)
        raise
    os.close(telemetry_w)
    os.close(control_r)
    return popen, telemetry_r, control_w


class LocalBackend(Backend):
    """Workers as subprocesses of this kernel, talking over private pipes (the default).

    Each worker is ``python -m nbtrain.worker`` in its own session, so Jupyter's interrupt
    does not reach it; it exits within 2 s of the kernel's death (EOF on its control pipe).

    Examples
    --------
    >>> run = nbtrain.launch(cfg, backend=nbtrain.LocalBackend())  # same as backend="local"
    ... # doctest: +SKIP
    """

    name = "local"

    def start(
        self, *, run_id: str, worker_id: str, config_path: Path, config: WorkerConfig, cwd: str
    ) -> WorkerProcess:
        """Spawn the worker for ``config_path``; raise ``OSError`` if it cannot be spawned.

        Parameters
        ----------
        run_id : str
            The run (the worker reads it from its config file).
        worker_id : str
            The worker's normalized id, also passed as ``WORKER_ID``.
        config_path : Path
            Its worker config file.
        config : WorkerConfig
            The same config, parsed (unused here: the subprocess reads the file).
        cwd : str
            The worker's working directory.

        Returns
        -------
        WorkerProcess
            The running subprocess and the kernel's ends of its pipes.
        """
        return WorkerProcess(worker_id, config_path, cwd=cwd)


class WorkerProcess(WorkerHandle):
    """Spawned at construction; the kernel keeps the read end of telemetry/stdout/stderr and
    the write end of control."""

    def __init__(self, worker_id: str, config_path: Path, *, cwd: str | None = None) -> None:
        self.worker_id = worker_id
        self.config_path = config_path
        self.popen, self.telemetry_fd, control_w = spawn_worker(
            worker_command(config_path, worker_id), worker_id, cwd=cwd
        )
        os.set_blocking(control_w, False)  # the writer thread acknowledges: it never waits
        self._control_fd: int | None = control_w
        self._control_lock = threading.Lock()  # a closed fd number may be reused at once
        self.started_at = time.time()
        self.stop_requested = False
        self.pid: int = self.popen.pid
        self.pid_start = process_start_token(self.pid)
        self.host = this_host()

    def fds(self) -> dict[int, FdKind]:
        assert self.popen.stdout is not None
        assert self.popen.stderr is not None
        return {
            self.telemetry_fd: "telemetry",
            self.popen.stdout.fileno(): "stdout",
            self.popen.stderr.fileno(): "stderr",
        }

    def close_fd(self, fd: int) -> None:
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None and not stream.closed and stream.fileno() == fd:
                stream.close()
                return
        with contextlib.suppress(OSError):
            os.close(fd)

    def poll(self) -> int | None:
        return self.popen.poll()

    def request_stop(self) -> None:
        """Ask politely: a Stop frame on the control pipe (the worker finishes its step)."""
        self.stop_requested = True
        self._send(encode_frame(Stop()))

    def acknowledge(self, episodes: int) -> None:
        self._send(encode_frame(Stored(episodes=episodes)))

    def _send(self, frame: bytes) -> None:
        """Write a control frame (far below PIPE_BUF: whole or not at all). A worker that
        does not read its control pipe (wedged) loses acknowledgements, not the kernel's
        time: a stop then goes on to SIGTERM."""
        with self._control_lock:
            if self._control_fd is not None:
                with contextlib.suppress(OSError):
                    os.write(self._control_fd, frame)

    def signal(self, signum: int) -> None:
        """Signal the worker's whole process group (its own session), agent children too."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)

    def stop(self, timeout: float) -> int:
        """Ask, then SIGTERM, then SIGKILL, within ``timeout``; returns the exit code."""
        deadline = time.monotonic() + max(timeout, 0.0)
        self.request_stop()
        for signum, share in ((None, 0.5), (signal.SIGTERM, 0.8), (signal.SIGKILL, 1.0)):
            if signum is not None:
                self.signal(signum)
            remaining = deadline - time.monotonic()
            step_deadline = time.monotonic() + max(remaining * share, 0.0)
            if signum == signal.SIGKILL:
                step_deadline = max(step_deadline, time.monotonic() + 5.0)
            code = _wait_until(self.popen, step_deadline)
            if code is not None:
                return code
        return self.popen.wait()

    def close_control(self) -> None:
        with self._control_lock:
            fd, self._control_fd = self._control_fd, None
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _wait_until(popen: subprocess.Popen[bytes], deadline: float) -> int | None:
    while True:
        code = popen.poll()
        if code is not None:
            return code
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)
