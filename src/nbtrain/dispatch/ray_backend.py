"""Workers as Ray actors: the kernel side of the Ray backend.

One actor per worker id (:class:`~nbtrain.dispatch.ray_actor.WorkerActor`) runs the ordinary
worker loop in its own process on a cluster node and streams its telemetry back in batches
(a Ray streaming generator, with backpressure). Here a pump thread per worker writes those batches
into a local pipe, so the run's ingest thread reads a Ray worker exactly like a subprocess.

Ray is imported only when a :class:`RayBackend` is constructed; ``import nbtrain`` and the
local backend never load it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from nbtrain.dispatch.backend import Backend, FdKind, WorkerHandle
from nbtrain.dispatch.ray_actor import BATCH_BYTES, BATCH_SECONDS
from nbtrain.dispatch.ray_reaper import OWNER_ENV, owner_marker, start_reaper, stop_reaper
from nbtrain.errors import RunError, UnknownWorkerError
from nbtrain.ids import normalize_worker_id
from nbtrain.worker.cli import WORKER_ID_ENV

if TYPE_CHECKING:
    from nbtrain.worker.config_file import WorkerConfig

#: Unconsumed batches an actor may run ahead of the kernel before its generator pauses
#: (and, its pipe full, the worker blocks): 16 x 256 KiB at most in flight per worker.
BACKPRESSURE_BATCHES = 16
#: How long a restarted worker waits for its previous actor's name to be released.
NAME_RELEASE_S = 10.0
#: The exit code reported when the actor (or its node) died and the worker's own is unknown.
ACTOR_DIED_EXIT_CODE = -signal.SIGKILL
REASON_CHARS = 2000
_KINDS: tuple[FdKind, ...] = ("telemetry", "stdout", "stderr")
TEMP_DIR_ENV = "NBTRAIN_RAY_TMPDIR"


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            f'the Ray backend needs Ray ({exc}); install it with: pip install "nbtrain[ray]"'
        ) from exc
    return ray


def default_temp_dir() -> str:
    """Short (Ray's socket paths must fit in 107 bytes) and the user's own."""
    return os.environ.get(TEMP_DIR_ENV) or f"/tmp/nbtrain-ray-{os.getuid()}"


def actor_name(run_id: str, worker_id: str) -> str:
    return f"nbtrain-{run_id}-{worker_id}"


def run_namespace(run_id: str) -> str:
    return f"nbtrain-{run_id}"


def stop_worker(
    run_id: str, worker_id: str, *, namespace: str | None = None, address: str | None = None
) -> None:
    """Ask a running Ray worker to stop, by its actor's name, from any driver on its cluster
    (it ends ``stopped`` as if its kernel had asked). ``UnknownWorkerError`` if no such
    actor runs."""
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or "auto",
                 logging_level="WARNING")  # fmt: skip
    name = actor_name(run_id, normalize_worker_id(worker_id))
    space = namespace or run_namespace(run_id)
    try:
        actor = ray.get_actor(name, namespace=space)
    except ValueError:
        # No such actor on this cluster: the worker is not running here.
        raise UnknownWorkerError(run_id, normalize_worker_id(worker_id)) from None
    ray.get(actor.stop.remote(), timeout=60)


class RayBackend(Backend):
    """Run each worker as a Ray actor.

    ``address``: a cluster (``"ray://head:10001"``, ``"auto"``…). Without it the kernel's
    Ray is used if ``ray.init()`` already ran, else ``RAY_ADDRESS``, else a new local
    instance (``local_num_cpus`` CPUs, temp folder ``temp_dir``) that ends with the kernel.
    ``num_cpus``: reserved per worker. ``namespace``: where the named actors live (default:
    one namespace per run, ``nbtrain-{run_id}``). ``runtime_env``: passed to every actor
    (e.g. ``pip`` or ``working_dir`` for a cluster whose nodes lack your code).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: float = 1,
        namespace: str | None = None,
        runtime_env: dict[str, Any] | None = None,
        local_num_cpus: int | None = None,
        temp_dir: str | None = None,
        batch_bytes: int = BATCH_BYTES,
        batch_seconds: float = BATCH_SECONDS,
        backpressure: int = BACKPRESSURE_BATCHES,
    ) -> None:
        problems = []
        if not num_cpus > 0:
            problems.append(f"num_cpus={num_cpus!r} must be > 0")
        if local_num_cpus is not None and local_num_cpus < 1:
            problems.append(f"local_num_cpus={local_num_cpus!r} must be >= 1")
        if batch_bytes < 1 or not batch_seconds > 0 or backpressure < 1:
            problems.append(
                f"batch_bytes={batch_bytes!r}, batch_seconds={batch_seconds!r} and "
                f"backpressure={backpressure!r} must all be positive"
            )
        if runtime_env is not None and not isinstance(runtime_env, dict):
            problems.append(f"runtime_env must be a dict, not {type(runtime_env).__name__}")
        if problems:
            raise ValueError("RayBackend: " + "; ".join(problems))
        self._ray = import_ray()
        self.address = address
        self.num_cpus = num_cpus
        self.namespace = namespace
        self.runtime_env = dict(runtime_env or {})
        self.local_num_cpus = local_num_cpus
        self.temp_dir = temp_dir or default_temp_dir()
        self.batch = (batch_bytes, batch_seconds)
        self.backpressure = backpressure
        self._actor_class: Any = None
        self._lock = threading.Lock()
        #: True if this backend started the Ray instance it uses.
        self.started_ray = False

    # -- the cluster -----------------------------------------------------------------------
    def connect(self) -> None:
        """Join the kernel's Ray, ``address``/``RAY_ADDRESS``, or start a local instance."""
        ray = self._ray
        with self._lock:
            if ray.is_initialized():
                return
            address = self.address or os.environ.get("RAY_ADDRESS") or None
            if address is not None:
                ray.init(address=address, logging_level="WARNING")
                return
            Path(self.temp_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
            # Every process of the instance inherits the owner marker (see .ray_reaper).
            marker = owner_marker(os.getpid())
            before = os.environ.get(OWNER_ENV)
            os.environ[OWNER_ENV] = marker
            try:
                ray.init(
                    address="local",
                    num_cpus=self.local_num_cpus,
                    include_dashboard=False,
                    _temp_dir=self.temp_dir,
                    logging_level="WARNING",
                )
            finally:
                if before is None:
                    os.environ.pop(OWNER_ENV, None)
                else:
                    os.environ[OWNER_ENV] = before
            self.started_ray = True
            start_reaper(marker, self.temp_dir)

    def _actor(self) -> Any:
        if self._actor_class is None:
            from nbtrain.dispatch.ray_actor import WorkerActor

            # Threaded: ``stop`` must run while ``stream`` is producing.
            self._actor_class = self._ray.remote(max_concurrency=4)(WorkerActor)
        return self._actor_class

    def _check_feasible(self) -> None:
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        most = max((n.get("Resources", {}).get("CPU", 0.0) for n in nodes), default=0.0)
        if most < self.num_cpus:
            raise RunError(
                f"no Ray node can host a worker with num_cpus={self.num_cpus}: the largest "
                f"node has {most:g} CPUs; pass RayBackend(num_cpus=...) with a smaller value"
            )

    # -- workers ---------------------------------------------------------------------------
    def start(
        self, *, run_id: str, worker_id: str, config_path: Path, config: WorkerConfig, cwd: str
    ) -> RayWorkerHandle:
        self.connect()
        self._check_feasible()
        runtime_env = dict(self.runtime_env)
        if runtime_env:
            # A runtime_env costs a fresh Ray worker process per actor (~1-2 s); without
            # one, the actor sets WORKER_ID itself and starts on a pooled process.
            env_vars = dict(runtime_env.get("env_vars") or {})
            env_vars[WORKER_ID_ENV] = worker_id
            runtime_env["env_vars"] = env_vars
        options: dict[str, Any] = {
            "name": actor_name(run_id, worker_id),
            "namespace": self.namespace or run_namespace(run_id),
            "num_cpus": self.num_cpus,
            "max_restarts": 0,
        }
        if runtime_env:
            options["runtime_env"] = runtime_env
        args = (msgspec.json.encode(config), worker_id, cwd, str(config_path.parent))
        actor = self._create(options, args)
        return RayWorkerHandle(
            self._ray, actor, worker_id, options["name"], self.batch, self.backpressure
        )

    def _create(self, options: dict[str, Any], args: tuple[Any, ...]) -> Any:
        """The actor; a restarted worker waits for its previous actor's name to be free."""
        deadline = time.monotonic() + NAME_RELEASE_S
        while True:
            try:
                return self._actor().options(**options).remote(*args)
            except ValueError as exc:
                if "already" not in str(exc) or time.monotonic() > deadline:
                    raise RunError(
                        f"cannot create Ray actor {options['name']!r} in namespace "
                        f"{options['namespace']!r}: {exc}"
                    ) from exc
                time.sleep(0.1)

    def close(self) -> None:
        """Shut down the local Ray instance if this backend started it."""
        if self.started_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self.started_ray = False
        stop_reaper()


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
    ) -> None:
        self._ray = ray
        self._actor = actor
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
            self._info = actor.info.remote()
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
            info = ray.get(self._info)
            self.pid, self.pid_start, self.host = info["pid"], info["pid_start"], info["host"]
            for ref in self._stream:
                telemetry, stdout, stderr, last = ray.get(ref)
                for index, data in enumerate((telemetry, stdout, stderr)):
                    self._write(index, data)
                if last is not None:
                    code = last
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
        if self._ray.is_initialized():
            with contextlib.suppress(Exception):
                self._ray.kill(self._actor, no_restart=True)

    def close_control(self) -> None:
        """The worker has ended: release its actor (and the CPUs it reserved) now."""
        self._kill()


def _reason(name: str, exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if len(text) > REASON_CHARS:
        text = text[:REASON_CHARS] + "..."
    return f"Ray actor {name!r} died ({type(exc).__name__}): {text}"
