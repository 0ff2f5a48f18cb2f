"""Finding a worker's Ray actor from any driver on the cluster, by run and worker id.

An actor hosts one worker after another (:mod:`nbtrain.dispatch.ray_pool`), so its name
cannot be the worker's: every actor nbtrain starts is named ``nbtrain-host-<unique>`` in
one namespace (``nbtrain`` unless ``RayBackend(namespace=…)``), and answers which worker
it runs now. This module imports Ray only when asked to stop a worker.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from nbtrain.errors import RunError, UnknownWorkerError
from nbtrain.ids import normalize_worker_id

HOST_PREFIX = "nbtrain-host-"
DEFAULT_NAMESPACE = "nbtrain"
#: How long a driver waits for each actor to say which worker it runs.
ASK_S = 30.0


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            f'the Ray backend needs Ray ({exc}); install it with: pip install "nbtrain[ray]"'
        ) from exc
    return ray


def host_name() -> str:
    return f"{HOST_PREFIX}{uuid.uuid4().hex[:16]}"


def find_host(ray: Any, run_id: str, worker_id: str, namespace: str | None = None) -> Any | None:
    """The live actor that runs worker ``worker_id`` of ``run_id`` now, or None."""
    wid = normalize_worker_id(worker_id)
    space = namespace or DEFAULT_NAMESPACE
    asked = []
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] != space or not entry["name"].startswith(HOST_PREFIX):
            continue
        try:
            actor = ray.get_actor(entry["name"], namespace=space)
        except ValueError:
            continue  # ended since it was listed
        asked.append((actor, actor.hosting.remote()))
    for actor, ref in asked:
        try:
            hosting = ray.get(ref, timeout=ASK_S)
        except ray.exceptions.RayError:
            continue  # dead, or too busy to answer: not a running worker to stop
        if hosting is not None and tuple(hosting) == (run_id, wid):
            return actor
    return None


def stop_worker(
    run_id: str, worker_id: str, *, namespace: str | None = None, address: str | None = None
) -> None:
    """Ask a running Ray worker to stop from any driver on its cluster (it ends ``stopped``
    as if its kernel had asked). ``UnknownWorkerError`` if no actor runs that worker,
    ``RunError`` if no Ray cluster can be joined."""
    ray = import_ray()
    if not ray.is_initialized():
        where = address or os.environ.get("RAY_ADDRESS") or "auto"
        try:
            ray.init(address=where, logging_level="WARNING")
        except ConnectionError as exc:
            raise RunError(
                f"cannot stop worker {worker_id!r} of run {run_id}: no Ray cluster at "
                f"address={where!r} ({exc}); pass address= or set RAY_ADDRESS to the cluster "
                "that runs it"
            ) from exc
    wid = normalize_worker_id(worker_id)
    actor = find_host(ray, run_id, wid, namespace)
    if actor is None or not ray.get(actor.stop_if.remote(run_id, wid), timeout=ASK_S):
        raise UnknownWorkerError(run_id, wid)
