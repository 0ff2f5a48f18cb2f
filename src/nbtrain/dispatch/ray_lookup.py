"""Finding a worker's Ray actor from any driver on the cluster, by run and worker id.

An actor hosts one worker after another (:mod:`nbtrain.dispatch.ray_pool`), so its name
cannot be the worker's: every actor nbtrain starts is named ``nbtrain-host-<unique>`` in
one namespace (``nbtrain`` unless ``RayBackend(namespace=…)``), and answers which worker
it runs now. This module imports Ray only when asked to stop a worker.

A cluster address is checked before ``ray.init`` joins it (:func:`check_address`): Ray
retries an address that does not answer for many minutes before it gives up.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from nbtrain.errors import RunError, UnknownWorkerError
from nbtrain.ids import normalize_worker_id

HOST_PREFIX = "nbtrain-host-"
DEFAULT_NAMESPACE = "nbtrain"
#: How long a driver waits for each actor to say which worker it runs.
ASK_S = 30.0
#: How long joining a cluster waits for a TCP connection to its address.
CONNECT_TIMEOUT_S = 5.0
#: Addresses Ray resolves itself (``auto``: RAY_ADDRESS or a cluster on this machine).
LOCAL_ADDRESSES = ("auto", "local")


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            f'the Ray backend needs Ray ({exc}); install it with: pip install "nbtrain[ray]"'
        ) from exc
    return ray


def parse_address(address: str, origin: str = "address") -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port``, ``[IPv6]:port`` or ``ray://host:port``; None for
    ``auto``, ``local`` and other schemes (Ray's to resolve); a ``RunError`` naming the
    address (and ``origin``, where it came from) if it is malformed."""
    if address in LOCAL_ADDRESSES:
        return None
    scheme, sep, rest = address.partition("://")
    if not sep:
        rest = address
    elif scheme != "ray":
        return None
    where = f"Ray address {origin}={address!r}"
    example = "(e.g. 'head:6379' or 'ray://head:10001')"
    if rest.startswith("["):  # [IPv6]:port
        host, _, tail = rest[1:].partition("]")
        has_port, port_text = tail.startswith(":"), tail[1:]
    else:
        host, colon, port_text = rest.rpartition(":")
        has_port = bool(colon)
        if ":" in host:
            raise RunError(f"{where} is not host:port: write an IPv6 host in brackets {example}")
    if not host or not has_port:
        missing = "host" if has_port else "port"
        raise RunError(f"{where} is not host:port: it has no {missing} {example}")
    if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
        raise RunError(f"{where} is not host:port: port {port_text!r} is not 1-65535 {example}")
    return host, int(port_text)


def check_address(address: str, timeout: float, origin: str = "address") -> None:
    """Fail fast, with a ``RunError`` naming the address and the reason, if ``address`` is
    malformed (:func:`parse_address`) or takes no TCP connection within ``timeout`` seconds;
    ``ray.init`` would retry it for many minutes."""
    endpoint = parse_address(address, origin)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=timeout).close()
    except TimeoutError:
        reason = f"no answer within {timeout:g} s"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    else:
        return
    raise RunError(
        f"cannot join the Ray cluster at {origin}={address!r}: {endpoint[0]}:{endpoint[1]}: "
        f"{reason}; check the address, and that the cluster's head node runs and its port is "
        "open to this machine"
    )


def same_endpoint(a: tuple[str, int], b: tuple[str, int]) -> bool:
    """Two ``(host, port)`` name one endpoint: same port, hosts equal or resolving to the
    same IP (``localhost`` and ``127.0.0.1``)."""
    if a[1] != b[1]:
        return False
    if a[0] == b[0]:
        return True
    try:
        return socket.gethostbyname(a[0]) == socket.gethostbyname(b[0])
    except OSError:
        return False


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
        check_address(where, CONNECT_TIMEOUT_S, "address" if address else "RAY_ADDRESS")
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
