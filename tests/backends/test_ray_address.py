"""A Ray cluster address that is malformed or does not answer fails the start at once.

Regression: ``RayBackend(address="host:port")`` (``nbtrain run --ray-address``) or
``RAY_ADDRESS`` at an address nothing answers made ``ray.init`` retry for many minutes
before it failed, so a launch seemed to hang. Now the address is parsed and a TCP connection
tried with ``connect_timeout`` first, and the start fails with a ``RunError`` naming it.

The faults are real: a local port that was bound and closed (connection refused), and a
listening socket whose accept queue is full (the SYNs are dropped, so a connection times
out, as at an unroutable address; a remote one cannot be used here because this machine's
network accepts connections to any outside address). ``connect()`` does nothing in a
process that has already joined Ray (the session's ``ray_cluster``), so every attempt runs
in one fresh interpreter.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("ray")

#: Seconds an attempt may take beyond its connect timeout; Ray's own retries of these
#: addresses take from 30 s to many minutes.
SLACK_S = 20.0
TIMEOUT_S = 0.5

ATTEMPT = r"""
import json, os, sys, time
import nbtrain
from nbtrain.dispatch.ray_backend import RayBackend, stop_worker

def attempt(case):
    os.environ.pop("RAY_ADDRESS", None)
    if case.get("env"):
        os.environ["RAY_ADDRESS"] = case["env"]
    backend = lambda: RayBackend(address=case.get("address"), connect_timeout=case["timeout"])
    start = time.monotonic()
    try:
        if case["via"] == "launch":
            config = dict(env_id="FrozenLake-v1", episodes=2, workers=1)
            nbtrain.launch(config, db="launch.sqlite", backend=backend())
        elif case["via"] == "stop_worker":
            stop_worker("01M8R9V660MMEJJABQ56EF7PZS", "000001")
        else:
            backend().connect()
    except Exception as exc:
        return {"error": type(exc).__name__, "message": str(exc),
                "seconds": time.monotonic() - start}
    return {"error": None, "message": "", "seconds": time.monotonic() - start}

for name, case in json.loads(sys.argv[1]).items():
    print(json.dumps({name: attempt(case)}), flush=True)
"""


def closed_port() -> int:
    """A local port nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def unresponsive_port() -> Iterator[int]:
    """A local port that takes no new connection: its accept queue is full."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = int(server.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            yield port


@pytest.fixture(scope="module")
def ports(unresponsive_port: int) -> dict[str, int]:
    return {"closed": closed_port(), "unresponsive": unresponsive_port}


def cases(ports: dict[str, int]) -> dict[str, dict[str, Any]]:
    closed, unresponsive = ports["closed"], ports["unresponsive"]
    plain = {"via": "connect", "timeout": 5.0}
    return {
        "refused": plain | {"address": f"127.0.0.1:{closed}"},
        "refused_ipv6": plain | {"address": f"[::1]:{closed}"},
        "refused_launch": plain | {"via": "launch", "address": f"127.0.0.1:{closed}"},
        "refused_client_env": plain | {"env": f"ray://127.0.0.1:{closed}"},
        "refused_auto_env": plain | {"address": "auto", "env": f"localhost:{closed}"},
        "refused_stop_worker": plain | {"via": "stop_worker", "env": f"127.0.0.1:{closed}"},
        "no_answer": plain | {"address": f"127.0.0.1:{unresponsive}", "timeout": TIMEOUT_S},
        "no_port": plain | {"address": "headnode"},
        "client_no_port": plain | {"address": "ray://headnode"},
        "no_host": plain | {"address": ":6379"},
        "word_port": plain | {"address": "headnode:abc"},
        "big_port": plain | {"address": "headnode:70000"},
        "bare_ipv6": plain | {"env": "::1:6379"},
    }


@pytest.fixture(scope="module")
def results(ports: dict[str, int], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case's outcome, attempted in one fresh interpreter (Ray is slow to import)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-c", ATTEMPT, json.dumps(cases(ports))],
        capture_output=True,
        text=True,
        timeout=180,  # before the fix the first case alone took minutes
        cwd=tmp_path_factory.mktemp("ray_address"),
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            found.update(json.loads(line))
    return found


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("refused", "address='127.0.0.1:{closed}': 127.0.0.1:{closed}: Connection refused"),
        ("refused_ipv6", "address='[::1]:{closed}': ::1:{closed}: "),
        ("refused_launch", "address='127.0.0.1:{closed}': 127.0.0.1:{closed}: Connection ref"),
        ("refused_client_env", "RAY_ADDRESS='ray://127.0.0.1:{closed}': 127.0.0.1:{closed}: "),
        ("refused_auto_env", "RAY_ADDRESS='localhost:{closed}': localhost:{closed}: "),
        ("refused_stop_worker", "RAY_ADDRESS='127.0.0.1:{closed}': 127.0.0.1:{closed}: "),
        ("no_answer", "address='127.0.0.1:{unresponsive}': 127.0.0.1:{unresponsive}: no answer"),
    ],
)
def test_an_address_that_does_not_answer_fails_fast_naming_it(
    results: dict[str, Any], ports: dict[str, int], case: str, named: str
) -> None:
    outcome = results[case]
    assert outcome["error"] == "RunError", outcome
    assert named.format(**ports) in outcome["message"]
    assert "cannot join the Ray cluster" in outcome["message"]
    assert outcome["seconds"] < cases(ports)[case]["timeout"] + SLACK_S, outcome


def test_a_launch_at_an_unreachable_address_ends_its_run_failed_with_the_reason(
    results: dict[str, Any],
) -> None:
    message = results["refused_launch"]["message"]
    assert "could not start all its workers" in message
    assert "Connection refused" in message


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("no_port", "address='headnode' is not host:port: it has no port"),
        ("client_no_port", "address='ray://headnode' is not host:port: it has no port"),
        ("no_host", "address=':6379' is not host:port: it has no host"),
        ("word_port", "address='headnode:abc' is not host:port: port 'abc' is not 1-65535"),
        ("big_port", "address='headnode:70000' is not host:port: port '70000' is not 1-65535"),
        ("bare_ipv6", "RAY_ADDRESS='::1:6379' is not host:port: write an IPv6 host in brackets"),
    ],
)
def test_a_malformed_address_is_refused_naming_it(
    results: dict[str, Any], case: str, named: str
) -> None:
    outcome = results[case]
    assert outcome["error"] == "RunError", outcome
    assert named in outcome["message"]
    assert "e.g. 'head:6379' or 'ray://head:10001'" in outcome["message"]


def test_a_closed_port_and_a_full_queue_are_real_faults(ports: dict[str, int]) -> None:
    """The premise of the cases above, checked here rather than assumed."""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", ports["closed"]), timeout=5).close()
    with pytest.raises(TimeoutError):
        socket.create_connection(("127.0.0.1", ports["unresponsive"]), timeout=TIMEOUT_S).close()


def test_an_address_other_than_the_joined_cluster_is_refused(
    ray_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression (QA): with Ray already initialized in the kernel, RayBackend(address=...)
    # was ignored and the run went to the local instance.
    from nbtrain.dispatch.ray_backend import RayBackend
    from nbtrain.errors import RunError

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    current = ray_cluster.get_runtime_context().gcs_address
    host, _, port = current.rpartition(":")
    for same in (current, f"localhost:{port}" if host == "127.0.0.1" else current, "auto"):
        RayBackend(address=same).connect()  # the cluster it has: fine
    RayBackend().connect()
    other = f"{host}:{int(port) + 1 if int(port) < 65535 else 1}"
    with pytest.raises(RunError, match=r"already connected to the Ray cluster at .*names another"):
        RayBackend(address=other).connect()
    with pytest.raises(RunError, match=r"address='ray://nohost:1' names another"):
        RayBackend(address="ray://nohost:1").connect()
    assert ray_cluster.is_initialized()  # the kernel's cluster is left as it was
