"""The Ray actor that hosts one nbtrain worker on a cluster node.

The actor runs the *ordinary* worker (:class:`nbtrain.worker.runtime.Worker`, the same
training loop, emitter and wire frames as ``python -m nbtrain.worker``) in a thread of its
own process. An earlier version ran that command as the actor's subprocess and relayed its
pipes; hosting it in the actor saves a process per worker, a copy of every byte and the
subprocess's start (an interpreter and its imports) from every launch.

Telemetry, and whatever the process prints to ``sys.stdout``/``sys.stderr`` (the actor
hosts one worker, so that is the agent's output), go into an in-memory
:class:`~nbtrain.dispatch.outbox.Outbox` that :meth:`WorkerActor.stream` yields in batches.
``stop`` sets the worker's stop flag (what a ``Stop`` frame or SIGTERM does to a
subprocess); a step that never returns is ended by ``ray.kill``, as a dead node or an agent
that kills its process is: Ray then reports the actor dead with its reason.

This module does not import Ray: :mod:`nbtrain.dispatch.ray_backend` wraps the class with
``ray.remote`` (so it can be tested, and read, without a cluster).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import msgspec

from nbtrain import log_codes
from nbtrain.dispatch.outbox import STDERR, STDOUT, Batch, Outbox, OutboxSink, capture
from nbtrain.logs import log
from nbtrain.procinfo import process_start_token
from nbtrain.worker.cli import PROG, WORKER_ID_ENV, Launch, UsageError, parse_launch
from nbtrain.worker.config_file import WorkerConfig
from nbtrain.worker.control import StopFlag
from nbtrain.worker.runtime import Worker

#: A batch is sent once it holds this many bytes of telemetry...
BATCH_BYTES = 256 * 1024
#: ...or once its first byte is this old (the live view stays fresh at low step rates).
BATCH_SECONDS = 0.05
#: How long a new worker waits for the previous one's thread to finish handing over.
HANDOVER_S = 5.0

__all__ = ["BATCH_BYTES", "BATCH_SECONDS", "Batch", "WorkerActor"]


class WorkerActor:
    """Hosts one worker at a time. Construct it with a worker's config *by value* (JSON
    bytes) to start that worker at once, or call :meth:`start`; :meth:`stream` (once per
    worker) yields what the worker produces. Once a worker has ended, :meth:`start` can run
    the next one in the same process (see :mod:`nbtrain.dispatch.ray_pool`)."""

    def __init__(
        self,
        config_json: bytes | None = None,
        worker_id: str = "",
        cwd: str = "",
        config_dir: str = "",
    ) -> None:
        self.worker_id = self.run_id = ""
        self.flag = StopFlag()
        self.outbox = Outbox()
        self._thread: threading.Thread | None = None
        self._on_path: str | None = None
        #: Source files of the modules loaded when the last worker ended, and their stat.
        self._sources: dict[str, tuple[int, int]] = {}
        if config_json is not None:
            self.start(config_json, worker_id, cwd, config_dir)

    def start(
        self, config_json: bytes, worker_id: str, cwd: str, config_dir: str
    ) -> dict[str, object]:
        """Start the worker of ``config_json`` in a thread; returns :meth:`info`. Raises
        ``RuntimeError`` if the previous worker has not ended."""
        if self._thread is not None:
            self._thread.join(HANDOVER_S)
            if self._thread.is_alive():
                raise RuntimeError(
                    f"this actor still hosts worker {self.worker_id!r} of run {self.run_id}"
                )
            changed = _changed(self._sources)
            if changed is not None:
                # A subprocess would import the edited code: so must the next worker.
                raise RuntimeError(f"{changed} changed since this actor imported it")
        config = msgspec.json.decode(config_json, type=WorkerConfig)
        if config.run_dir is None:
            # Artifacts go where the kernel's record of this config lives, as locally.
            config = msgspec.structs.replace(config, run_dir=config_dir)
        assert config.run_dir is not None
        with contextlib.suppress(OSError):
            Path(config.run_dir).mkdir(parents=True, exist_ok=True)
        self.worker_id = worker_id
        self.run_id = config.run_id
        # What a subprocess worker gets from its dispatcher: WORKER_ID, its working
        # directory, and that directory on sys.path (``python -m`` puts it there).
        os.environ[WORKER_ID_ENV] = worker_id
        if os.path.isdir(cwd):
            os.chdir(cwd)
            if cwd not in sys.path:
                sys.path.insert(0, cwd)
                self._on_path = cwd
        self.flag = StopFlag()
        self.outbox = Outbox()
        self._saved_streams = (sys.stdout, sys.stderr)
        sys.stdout = capture(self.outbox, STDOUT)
        sys.stderr = capture(self.outbox, STDERR)
        record = Path(config_dir) / f"worker-{config.run_id}-{worker_id}.json"
        self._thread = threading.Thread(
            target=self._host,
            args=(config, record),
            name=f"nbtrain-worker-{worker_id}",
            daemon=True,
        )
        self._thread.start()
        return self.info()

    # -- the worker thread -----------------------------------------------------------------
    def _host(self, config: WorkerConfig, record: Path) -> None:
        code = 1
        try:
            code = self._run(config, record)
        except SystemExit as exc:  # an agent called sys.exit(): its code, as in a process
            code = _exit_code(exc)
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            sys.stdout, sys.stderr = self._saved_streams
            if self._on_path in sys.path:
                sys.path.remove(self._on_path)
            self._on_path = None
            with contextlib.suppress(Exception):
                self._sources = _sources()
            self.outbox.end(code)

    def _run(self, config: WorkerConfig, record: Path) -> int:
        try:
            launch = self._launch(config, record)
        except UsageError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
        worker = Worker(launch, OutboxSink(self.outbox), handle_signals=False)
        worker.flag = self.flag  # stop() may have come before the worker existed
        return worker.run()

    def _launch(self, config: WorkerConfig, record: Path) -> Launch:
        """The same checks as ``python -m nbtrain.worker`` on the same config file; relative
        paths in it are relative to the kernel's record of it, as for a subprocess."""
        private = tempfile.mkdtemp(prefix="nbtrain-worker-")  # 0700
        try:
            path = Path(private) / record.name
            path.write_bytes(msgspec.json.encode(config))
            launch = parse_launch(["--config", str(path), "--worker-id", self.worker_id])
        finally:
            shutil.rmtree(private, ignore_errors=True)
        return dataclasses.replace(
            launch,
            config_path=record,
            telemetry_fd=None,
            control_fd=None,
            jsonl=False,
            out_dir=None,  # a dispatched worker: it writes to the run's folder
        )

    # -- remote methods --------------------------------------------------------------------
    def info(self) -> dict[str, object]:
        """Where the worker runs: this process's pid and start token, the node's hostname."""
        pid = os.getpid()
        return {
            "pid": pid,
            "pid_start": process_start_token(pid),
            "host": socket.gethostname(),
        }

    def stream(
        self, batch_bytes: int = BATCH_BYTES, batch_seconds: float = BATCH_SECONDS
    ) -> Iterator[Batch]:
        """Yield the worker's output in batches until it has ended; the last batch carries
        its exit code. Called once (a Ray streaming generator, with backpressure)."""
        # Room for two batches, or a full pipe's worth, before the training loop waits.
        self.outbox.limit = max(self.outbox.limit, 2 * batch_bytes)
        try:
            while (batch := self.outbox.take(batch_bytes, batch_seconds)) is not None:
                yield batch
        finally:
            # Normally the worker has ended. If the kernel stopped reading, the worker
            # stops too: its next write fails, and the flag ends a loop that writes nothing.
            self.outbox.close()
            self.flag.request("orphaned")

    def stop(self) -> None:
        """Ask politely: the worker finishes its step, sends what it holds and ends."""
        log(20, log_codes.LOG_WORKER_STOP_REQUESTED, "stop requested through its Ray actor",
            run_id=self.run_id, worker_id=self.worker_id)  # fmt: skip
        self.flag.request("stop-frame")

    def hosting(self) -> tuple[str, str] | None:
        """``(run_id, worker_id)`` of the worker running here, if one is."""
        if self._thread is None or not self._thread.is_alive():
            return None
        return (self.run_id, self.worker_id)

    def stop_if(self, run_id: str, worker_id: str) -> bool:
        """:meth:`stop` if this actor runs that worker (a stop by ids from another driver)."""
        if self.hosting() != (run_id, worker_id):
            return False
        self.stop()
        return True

    def signal(self, signum: int) -> None:
        """What SIGTERM/SIGINT do to a subprocess worker: finish the step and end
        ``stopped`` (a hung step needs ``ray.kill``)."""
        self.flag.request(signal.Signals(signum).name)


def _sources() -> dict[str, tuple[int, int]]:
    """``{file: (mtime_ns, size)}`` of every loaded module that has a source file."""
    found = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            with contextlib.suppress(OSError):
                st = os.stat(path)
                found[path] = (st.st_mtime_ns, st.st_size)
    return found


def _changed(sources: dict[str, tuple[int, int]]) -> str | None:
    """The first of ``sources`` edited (or removed) since, if any."""
    for path, seen in sources.items():
        try:
            st = os.stat(path)
        except OSError:
            return path
        if (st.st_mtime_ns, st.st_size) != seen:
            return path
    return None


def _exit_code(exc: SystemExit) -> int:
    """The exit status Python would give ``raise SystemExit(code)``."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1
