"""Workers as Ray actors: the kernel side of the Ray backend.

One actor per running worker (:class:`~nbtrain.dispatch.ray_actor.WorkerActor`) runs the
ordinary worker loop in its own process on a cluster node and streams its telemetry back in
batches (a Ray streaming generator, with backpressure). Here a pump thread per worker writes
those batches into a local pipe, so the run's ingest thread reads a Ray worker exactly like
a subprocess. An actor whose worker ended normally is kept warm for the next worker
(:mod:`nbtrain.dispatch.ray_pool`); any driver finds a worker's actor by run and worker id
(:mod:`nbtrain.dispatch.ray_lookup`).

Ray is imported only when a :class:`RayBackend` is constructed; ``import nbtrain`` and the
local backend never load it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from nbtrain.dispatch.backend import Backend
from nbtrain.dispatch.ray_actor import BATCH_BYTES, BATCH_SECONDS
from nbtrain.dispatch.ray_handle import RayWorkerHandle, kill_actor
from nbtrain.dispatch.ray_lookup import (
    CONNECT_TIMEOUT_S,
    DEFAULT_NAMESPACE,
    check_address,
    find_host,
    host_name,
    import_ray,
    parse_address,
    same_endpoint,
    stop_worker,
)
from nbtrain.dispatch.ray_pool import KEEP_WARM_S, POOL
from nbtrain.dispatch.ray_reaper import OWNER_ENV, owner_marker, start_reaper, stop_reaper
from nbtrain.errors import RunError
from nbtrain.worker.cli import WORKER_ID_ENV

if TYPE_CHECKING:
    from nbtrain.worker.config_file import WorkerConfig

#: Unconsumed batches an actor may run ahead of the kernel before its generator pauses
#: (and, its pipe full, the worker blocks): 16 x 256 KiB at most in flight per worker.
BACKPRESSURE_BATCHES = 16
#: How long a kept actor may take to start its next worker before a new one is made.
REUSE_START_S = 10.0
TEMP_DIR_ENV = "NBTRAIN_RAY_TMPDIR"

# Where they were before a worker's actor could host several workers over time.
__all__ = [
    "RayBackend",
    "RayWorkerHandle",
    "end_kept_actors",
    "find_host",
    "import_ray",
    "stop_worker",
]


def default_temp_dir() -> str:
    """Short (Ray's socket paths must fit in 107 bytes) and the user's own."""
    return os.environ.get(TEMP_DIR_ENV) or f"/tmp/nbtrain-ray-{os.getuid()}"


class RayBackend(Backend):
    """Run each worker as a Ray actor.

    ``address``: a cluster (``"ray://head:10001"``, ``"auto"``…). Without it the kernel's
    Ray is used if ``ray.init()`` already ran, else ``RAY_ADDRESS``, else a new local
    instance (``local_num_cpus`` CPUs, temp folder ``temp_dir``) that ends with the kernel.
    ``num_cpus``: reserved per worker. ``namespace``: where the named actors live (default
    ``nbtrain``). ``runtime_env``: passed to every actor (e.g. ``pip`` or ``working_dir``
    for a cluster whose nodes lack your code). ``keep_warm``: seconds an actor whose worker
    ended normally is kept for the next worker (it still reserves its CPUs meanwhile);
    0 ends each actor with its worker, as does a ``runtime_env``. ``connect_timeout``: a
    ``host:port`` or ``ray://host:port`` address (or ``RAY_ADDRESS``) that is malformed or
    takes no TCP connection within these seconds fails the start with a ``RunError`` naming
    it, where Ray itself would retry it for many minutes.
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
        keep_warm: float = KEEP_WARM_S,
        connect_timeout: float = CONNECT_TIMEOUT_S,
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
        if not keep_warm >= 0:
            problems.append(f"keep_warm={keep_warm!r} must be >= 0 (seconds)")
        if not connect_timeout > 0:
            problems.append(f"connect_timeout={connect_timeout!r} must be > 0 (seconds)")
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
        # WORKER_ID in a runtime_env makes every actor's environment its own: none to reuse.
        self.keep_warm = 0.0 if self.runtime_env else float(keep_warm)
        self.connect_timeout = float(connect_timeout)
        self._actor_class: Any = None
        self._lock = threading.Lock()
        #: True if this backend started the Ray instance it uses.
        self.started_ray = False

    # -- the cluster -----------------------------------------------------------------------
    def _check_joined(self, ray: Any) -> None:
        """Ray already runs in this kernel, and one process joins one cluster: an explicit
        ``address`` must be that one, else the run would silently go to the other."""
        if self.address is None:
            return
        wanted = parse_address(self.address)  # None: auto, local or Ray's own scheme
        try:
            if wanted is None or ray.util.client.ray.is_connected():
                return  # nothing to compare (a Ray Client session: its server's address)
            current = str(ray.get_runtime_context().gcs_address)
            joined = parse_address(current, "gcs_address")
        except Exception:
            return
        if joined is None or same_endpoint(wanted, joined):
            return
        raise RunError(
            f"this kernel is already connected to the Ray cluster at {current}, and "
            f"address={self.address!r} names another; one process joins one cluster: call "
            "ray.shutdown() first (it ends the Ray actors of this kernel), or leave address "
            "out to use the cluster it has"
        )

    def connect(self) -> None:
        """Join the kernel's Ray, ``address``/``RAY_ADDRESS``, or start a local instance."""
        ray = self._ray
        with self._lock:
            if ray.is_initialized():
                self._check_joined(ray)
                return
            env = os.environ.get("RAY_ADDRESS") or None
            address = self.address or env
            if address is not None:
                # Ray itself joins RAY_ADDRESS in place of "auto".
                if env is not None and self.address in (None, "auto"):
                    origin, target = "RAY_ADDRESS", env
                else:
                    origin, target = "address", address
                check_address(target, self.connect_timeout, origin)
                try:
                    ray.init(address=address, logging_level="WARNING")
                except ConnectionError as exc:
                    raise RunError(
                        f"cannot join the Ray cluster at {origin}={target!r}: {exc}"
                    ) from exc
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
        args = (msgspec.json.encode(config), worker_id, cwd, str(config_path.parent))
        # Kept actors are reused whatever keep_warm says (they hold CPUs a new actor would
        # wait for); a runtime_env's actors are never interchangeable.
        key = None if runtime_env else self._pool_key()
        kept = self._reuse(key, args) if key is not None else None
        if kept is not None:
            (actor, name), info = kept
        else:
            options: dict[str, Any] = {
                "name": host_name(),
                "namespace": self.namespace or DEFAULT_NAMESPACE,
                "num_cpus": self.num_cpus,
                "max_restarts": 0,
            }
            if runtime_env:
                options["runtime_env"] = runtime_env
            # Kept actors this launch cannot use would hold CPUs it may need.
            POOL.drain(self._end_kept, unless=key)
            actor, name, info = self._create(options, args), options["name"], None
        keep = None
        if key is not None and self.keep_warm > 0:
            keep_warm = self.keep_warm

            def keep() -> None:
                POOL.give(key, (actor, name), keep_warm, self._end_kept)

        return RayWorkerHandle(
            self._ray, actor, worker_id, name, self.batch, self.backpressure, info=info,
            on_idle=keep,
        )  # fmt: skip

    def _pool_key(self) -> tuple[str, str, float]:
        job = str(self._ray.get_runtime_context().get_job_id())
        return (job, self.namespace or DEFAULT_NAMESPACE, float(self.num_cpus))

    def _reuse(
        self, key: tuple[str, str, float], args: tuple[Any, ...]
    ) -> tuple[tuple[Any, str], dict[str, Any]] | None:
        """A kept actor that has started this worker, and its info; None if none is kept
        (one that fails to start it is ended, and the next kept one tried)."""
        while (kept := POOL.take(key)) is not None:
            try:
                info = self._ray.get(kept[0].start.remote(*args), timeout=REUSE_START_S)
            except Exception:
                self._end_kept(kept)
                continue
            return kept, info
        return None

    def _end_kept(self, kept: tuple[Any, str]) -> None:
        kill_actor(self._ray, kept[0])

    def _create(self, options: dict[str, Any], args: tuple[Any, ...]) -> Any:
        try:
            return self._actor().options(**options).remote(*args)
        except ValueError as exc:
            raise RunError(
                f"cannot create Ray actor {options['name']!r} in namespace "
                f"{options['namespace']!r}: {exc}"
            ) from exc

    def close(self) -> None:
        """End the actors kept warm, and shut down the local Ray instance if this backend
        started it."""
        end_kept_actors()
        if self.started_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self.started_ray = False
        stop_reaper()


def end_kept_actors() -> None:
    """End every actor this kernel keeps warm now (and release the CPUs they reserve)."""
    ray = import_ray()
    POOL.drain(lambda kept: kill_actor(ray, kept[0]))
