"""The Ray actor that hosts one nbtrain worker on a cluster node.

It runs the *ordinary* worker (``python -m nbtrain.worker``) as its subprocess, with the same
private telemetry/control pipes as the local backend, so the training loop, emitter and wire
frames have one code path whatever the backend. The actor only relays: it streams the
worker's telemetry (and stdout/stderr) back to the kernel in batches and writes a ``Stop``
frame on request. If the actor dies, its end of the control pipe closes and the worker,
seeing EOF, ends by itself.

This module does not import Ray: :mod:`nbtrain.dispatch.ray_backend` wraps the class with
``ray.remote`` (so it can be tested, and read, without a cluster).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from nbtrain.dispatch.process import spawn_worker
from nbtrain.procinfo import process_start_token
from nbtrain.wire.codec import encode_frame
from nbtrain.wire.events import Stop
from nbtrain.worker.cli import WORKER_ID_ENV
from nbtrain.worker.config_file import WorkerConfig

#: A batch is sent once it holds this many bytes of telemetry...
BATCH_BYTES = 256 * 1024
#: ...or once its first byte is this old (the live view stays fresh at low step rates).
BATCH_SECONDS = 0.05
#: A worker whose process exited but whose pipes an agent's child still holds.
EXIT_GRACE_S = 2.0

#: One item of :meth:`WorkerActor.stream`: telemetry, stdout and stderr bytes, and the
#: worker's exit code in the last item only.
Batch = tuple[bytes, bytes, bytes, int | None]


class WorkerActor:
    """One worker id. Construct it with the worker's config *by value* (JSON bytes)."""

    def __init__(self, config_json: bytes, worker_id: str, cwd: str, config_dir: str) -> None:
        config = msgspec.json.decode(config_json, type=WorkerConfig)
        if config.run_dir is None:
            # Artifacts go where the kernel's record of this config lives, as locally.
            config = msgspec.structs.replace(config, run_dir=config_dir)
        assert config.run_dir is not None
        with contextlib.suppress(OSError):
            Path(config.run_dir).mkdir(parents=True, exist_ok=True)
        os.environ[WORKER_ID_ENV] = worker_id
        self.worker_id = worker_id
        self._private = tempfile.mkdtemp(prefix="nbtrain-worker-")  # 0700
        self.config_path = Path(self._private) / f"worker-{config.run_id}-{worker_id}.json"
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(msgspec.json.encode(config))
        self._start(worker_id, cwd if os.path.isdir(cwd) else self._private)

    def _start(self, worker_id: str, cwd: str) -> None:
        try:
            self.popen, self._telemetry_fd, control_w = spawn_worker(
                self.command(worker_id), worker_id, cwd=cwd
            )
        except BaseException:
            shutil.rmtree(self._private, ignore_errors=True)
            raise
        self._control_fd: int | None = control_w

    def command(self, worker_id: str) -> list[str]:
        """The ordinary worker's command line (a load benchmark substitutes a sender)."""
        config = str(self.config_path)
        return [
            sys.executable,
            "-m",
            "nbtrain.worker",
            "--config",
            config,
            "--worker-id",
            worker_id,
        ]

    def info(self) -> dict[str, object]:
        """Where the worker runs: its pid, that pid's start token, this node's hostname."""
        pid = self.popen.pid
        return {"pid": pid, "pid_start": process_start_token(pid), "host": socket.gethostname()}

    def stream(
        self, batch_bytes: int = BATCH_BYTES, batch_seconds: float = BATCH_SECONDS
    ) -> Iterator[Batch]:
        """Yield the worker's output in batches until it has ended; the last batch carries
        its exit code. Called once (a Ray streaming generator, with backpressure)."""
        assert self.popen.stdout is not None
        assert self.popen.stderr is not None
        selector = selectors.DefaultSelector()
        streams = {
            self._telemetry_fd: 0,
            self.popen.stdout.fileno(): 1,
            self.popen.stderr.fileno(): 2,
        }
        for fd, index in streams.items():
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ, index)
        parts = [bytearray(), bytearray(), bytearray()]
        first_at: float | None = None
        exited_at: float | None = None
        try:
            while True:
                open_fds = len(selector.get_map())
                code = self.popen.poll()
                if code is not None and exited_at is None:
                    exited_at = time.monotonic()
                if code is not None and (
                    not open_fds or time.monotonic() - (exited_at or 0.0) > EXIT_GRACE_S
                ):
                    break
                if first_at is None:
                    timeout = batch_seconds
                else:
                    timeout = max(first_at + batch_seconds - time.monotonic(), 0.0)
                if not open_fds:
                    time.sleep(0.01)  # only the exit is left to see
                for key, _ in selector.select(timeout=timeout) if open_fds else ():
                    data = _read(key.fd)
                    if data is None:
                        continue
                    if not data:
                        selector.unregister(key.fd)
                        continue
                    parts[key.data] += data
                    if first_at is None:
                        first_at = time.monotonic()
                full = len(parts[0]) >= batch_bytes
                if first_at is not None and (full or time.monotonic() - first_at >= batch_seconds):
                    yield (bytes(parts[0]), bytes(parts[1]), bytes(parts[2]), None)
                    for part in parts:
                        part.clear()
                    first_at = None
            code = self.popen.wait()
            yield (bytes(parts[0]), bytes(parts[1]), bytes(parts[2]), code)
        finally:
            selector.close()
            self._cleanup()

    def stop(self) -> None:
        """Ask politely: a Stop frame on the control pipe (the worker finishes its step)."""
        fd = self._control_fd
        if fd is not None:
            with contextlib.suppress(OSError):
                os.write(fd, encode_frame(Stop()))

    def signal(self, signum: int) -> None:
        """Signal the worker's process group (its own session), agent children too."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signum)

    def _cleanup(self) -> None:
        fd, self._control_fd = self._control_fd, None
        for each in (fd, self._telemetry_fd):
            if each is not None:
                with contextlib.suppress(OSError):
                    os.close(each)
        for pipe in (self.popen.stdout, self.popen.stderr):
            if pipe is not None:
                pipe.close()
        shutil.rmtree(self._private, ignore_errors=True)


def _read(fd: int) -> bytes | None:
    """Bytes, ``b""`` at EOF (or a broken pipe), None if nothing is there yet."""
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return None
    except OSError:
        return b""
