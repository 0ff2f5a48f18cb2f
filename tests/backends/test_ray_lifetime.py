"""Ray workers never outlive the kernel that owns them, a Ray instance the kernel started is
gone after it exits, and a worker can be stopped by name from another driver."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends.hosts import not_hosted
from tests.kit.backends import Launch, slow, worker_rows
from tests.kit.processes import pid_alive, wait_for, wait_gone

pytestmark = pytest.mark.slow

# A notebook kernel stand-in: launches a long run on Ray, prints its id, then waits until
# stdin closes (a normal exit) or it is killed.
KERNEL = """
import os, subprocess, sys
import nbtrain
from nbtrain.dispatch.ray_backend import RayBackend

backend = RayBackend(temp_dir=os.environ.get("TEST_RAY_TMP"), local_num_cpus=1)
config = dict(env_id="FrozenLake-v1", agent="random", episodes=10**6,
              max_steps_per_episode=100, step_delay=0.001, workers=1)
run = nbtrain.launch(config, db="kernel.sqlite", backend=backend)
# Something else the notebook started: it is not Ray's to end.
bystander = subprocess.Popen(["sleep", "600"])
open("bystander.pid", "w").write(str(bystander.pid))
print(run.run_id, flush=True)
sys.stdin.read()
bystander.kill()
"""


def start_kernel(cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str, int]:
    """The kernel, its run id and its worker's pid once that worker runs."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KERNEL],
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(cwd / "kernel.err").open("wb"),
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    if len(run_id) != 26:
        proc.kill()
        pytest.fail(f"the kernel did not launch its run: {(cwd / 'kernel.err').read_text()}")
    wait_for(lambda: bool(worker_rows(cwd / "kernel.sqlite", run_id).get("000001", {}).get("pid")))
    pid = worker_rows(cwd / "kernel.sqlite", run_id)["000001"]["pid"]
    return proc, run_id, pid


def descendants(root: int) -> set[int]:
    """Every live process under ``root`` (Ray's head processes and workers included)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        children = {p for p, parent in parents.items() if parent in frontier} - found
        found |= children
        frontier = children
    return found


def describe(pids: set[int]) -> list[str]:
    out = []
    for pid in sorted(pids):
        try:
            out.append(Path(f"/proc/{pid}/stat").read_text()[:80])
        except OSError:
            out.append(f"{pid} gone")
    return out


@pytest.fixture
def kernel_env(db: Path) -> Iterator[dict[str, str]]:
    """The kernel's environment; afterwards its bystander process is ended."""
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    yield env
    pid_file = db.parent / "bystander.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.fixture
def short_tmp() -> Iterator[str]:
    """Ray's socket paths must fit in 107 bytes: pytest's tmp_path is too deep."""
    path = tempfile.mkdtemp(prefix="nbr-", dir="/tmp")
    yield path
    subprocess.run(["rm", "-rf", path], check=False)


def test_actors_die_with_the_kernel_that_owns_them(
    db: Path, kernel_env: dict[str, str], ray_cluster: Any
) -> None:
    from nbtrain.dispatch.ray_backend import end_kept_actors

    ray = ray_cluster
    end_kept_actors()  # this process's warm actors would hold the session's 2 CPUs
    kernel_env["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    kernel, run_id, pid = start_kernel(db.parent, kernel_env)
    assert pid_alive(pid)
    kernel.kill()
    kernel.wait()
    assert wait_gone(pid, 30), "the worker outlived its kernel"
    assert not_hosted(ray, run_id, "000001", timeout=30)


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_a_ray_instance_the_kernel_started_ends_with_it(
    db: Path, kernel_env: dict[str, str], short_tmp: str, how: str
) -> None:
    kernel_env["TEST_RAY_TMP"] = short_tmp
    kernel, _, pid = start_kernel(db.parent, kernel_env)
    bystander = int((db.parent / "bystander.pid").read_text())
    try:
        owned = descendants(kernel.pid) - {bystander}
        assert pid in owned, "the worker runs under the kernel's own Ray instance"
        assert any(Path(short_tmp).iterdir()), "Ray used the temp folder it was given"
        if how == "exit":
            assert kernel.stdin is not None
            kernel.stdin.close()
            assert kernel.wait(timeout=120) == 0
        else:
            kernel.kill()  # the kernel alone, not its process group
            kernel.wait()
        deadline = time.monotonic() + 60
        while {p for p in owned if pid_alive(p)} and time.monotonic() < deadline:
            time.sleep(0.2)
        left = {p for p in owned if pid_alive(p)}
        log = Path(short_tmp, "nbtrain-reaper.log")
        reaper_log = log.read_text() if log.exists() else "no reaper log"
        assert not left, f"left running after the kernel ended: {describe(left)}; {reaper_log}"
        if how == "sigkill":
            assert pid_alive(bystander), "only Ray's processes are ended, not the notebook's"
    finally:
        kernel.kill()


def test_stop_a_worker_by_name_from_another_driver(
    launch: Launch, db: Path, ray_cluster: Any
) -> None:
    ray = ray_cluster
    run = launch(slow(workers=2), db=db, backend="ray")
    wait_for(lambda: len(run.steps()) > 20)
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address)
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from nbtrain.dispatch.ray_backend import stop_worker; "
            "stop_worker(sys.argv[1], sys.argv[2])",
            run.run_id,
            "000002",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert other.returncode == 0, other.stderr
    wait_for(lambda: run.status()["000002"] == "stopped")
    assert run.status()["000001"] == "running"
    run.stop()
    assert run.status() == {"000001": "stopped", "000002": "stopped"}
    bad = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from nbtrain.dispatch.ray_backend import stop_worker; "
            "stop_worker(sys.argv[1], '000002')",
            run.run_id,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0
    assert "UnknownWorkerError" in bad.stderr
    assert "'000002'" in bad.stderr
