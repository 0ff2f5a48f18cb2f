"""A run owned by another live kernel: stop, wait and restart from here, and the CLI."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nbtrain
from nbtrain.errors import RunError
from tests.kit.kernel import Kernel, rows, worker_pids
from tests.kit.processes import pid_alive, wait_for
from tests.kit.truth import episodes_have_all_steps, orphan_steps
from tests.pipeline.conftest import HELPERS


def _running_kernel(db: Path, kernels: list[Kernel], workers: int = 2) -> Kernel:
    kernel = Kernel(db, episodes=100_000, workers=workers, delay=0.002)
    kernels.append(kernel)
    wait_for(lambda: rows(db, "SELECT COUNT(*) FROM episodes")[0][0] >= 2, 30, "episodes")
    return kernel


def test_stop_from_another_process_stops_the_owners_workers(
    db: Path, kernels: list[Kernel]
) -> None:
    kernel = _running_kernel(db, kernels)
    run = nbtrain.Run.open(kernel.run_id, db=db)
    assert set(run.status().values()) == {"running"}
    started = time.monotonic()
    statuses = run.stop(timeout=10)
    assert time.monotonic() - started < 15
    assert statuses == {"000001": "stopped", "000002": "stopped"}
    assert set(rows(db, "SELECT status FROM workers")) == {("stopped",)}
    for pid in worker_pids(db, kernel.run_id):
        assert not pid_alive(pid)
    # The owning kernel's own wait() saw the same: the run ended stopped.
    out = kernel.rest()
    assert json.loads(out.split("DONE", 1)[1]) == statuses
    assert rows(db, "SELECT status FROM runs") == [("stopped",)]
    assert episodes_have_all_steps(db) == []


def test_stop_one_worker_from_another_process(db: Path, kernels: list[Kernel]) -> None:
    kernel = _running_kernel(db, kernels)
    run = nbtrain.Run.open(kernel.run_id, db=db)
    statuses = run.stop("w2")
    assert statuses["000002"] == "stopped"
    assert statuses["000001"] == "running"
    with pytest.raises(RunError, match="owned by a live kernel") as refused:
        run.restart(2)  # the owner lives: restart it there
    # Regression: it advised stopping the workers first, after which it refused again.
    assert "stop them first" not in str(refused.value)
    assert "once that kernel has exited" in str(refused.value)
    run.stop()


def test_wait_from_another_process_returns_when_the_rows_are_final(
    db: Path, kernels: list[Kernel]
) -> None:
    kernel = Kernel(db, episodes=40, workers=2, delay=0.001)
    kernels.append(kernel)
    run = nbtrain.Run.open(kernel.run_id, db=db)
    with pytest.raises(TimeoutError):
        run.wait(timeout=0.05)
    assert run.wait(timeout=60) == {"000001": "completed", "000002": "completed"}
    assert rows(db, "SELECT COUNT(*) FROM episodes") == [(80,)]


def test_cli_stop(db: Path, kernels: list[Kernel]) -> None:
    kernel = _running_kernel(db, kernels)
    cli = subprocess.run(
        [sys.executable, "-m", "nbtrain.cli", "stop", kernel.run_id, "--worker", "1",
         "--db", str(db)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert rows(db, "SELECT status FROM workers WHERE worker_id = '000001'") == [("stopped",)]
    bad = subprocess.run(
        [sys.executable, "-m", "nbtrain.cli", "stop", "../../x", "--db", str(db)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "not a run id" in bad.stderr
    nbtrain.Run.open(kernel.run_id, db=db).stop()


def _frozen_between_writes(db: Path, kernel: Kernel) -> None:
    """SIGSTOP the owning kernel at a moment it holds no write lock (else our request would
    wait on it): it then neither writes nor acts on requests until SIGCONT."""
    for _ in range(50):
        kernel.proc.send_signal(signal.SIGSTOP)
        conn = sqlite3.connect(db, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:  # stopped inside a transaction: let it finish
            kernel.proc.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        finally:
            conn.close()
    raise AssertionError("the kernel always held the write lock")


@pytest.mark.parametrize(
    ("agent", "signalled"),
    [
        (None, "SIGTERM"),
        ("pipeline_agents:IgnoresTerm", "SIGKILL"),
        ("pipeline_agents:Spawner", "SIGTERM"),  # its child process goes with it
    ],
)
def test_a_stop_from_another_process_ends_the_workers_of_an_owner_that_does_not_act(
    db: Path, kernels: list[Kernel], agent: str | None, signalled: str
) -> None:
    """DESIGN: a stop from another process stops workers a live kernel on this machine
    owns, checking each pid by its start time. The owner here is alive but suspended
    (SIGSTOP), so it neither acts on the request nor renews its lease: the workers are
    ended from here (SIGTERM; SIGKILL for one that ignores it). Once its process is gone
    the row says ``stopped`` at once (regression: it said ``running`` for a process that
    was gone until the owner ran again), and the owner, resumed, records the same."""
    env = {"KERNEL_AGENT": agent, "PYTHONPATH": HELPERS} if agent else None
    kernel = Kernel(db, episodes=100_000, workers=1, delay=0.002, env=env)
    kernels.append(kernel)
    wait_for(lambda: rows(db, "SELECT COUNT(*) FROM episodes")[0][0] >= 2, 30, "episodes")
    (pid,) = worker_pids(db, kernel.run_id)
    run = nbtrain.Run.open(kernel.run_id, db=db)
    _frozen_between_writes(db, kernel)
    try:
        assert run.stop(timeout=0.1) == {"000001": "stopped"}
        assert not pid_alive(pid)
        child = db.parent / "child.pid"
        if agent == "pipeline_agents:Spawner":  # the worker's process group was signalled
            wait_for(lambda: not pid_alive(int(child.read_text())), 5, "child gone")
        assert rows(db, "SELECT status FROM workers") == [("stopped",)]
        assert rows(db, "SELECT status FROM runs") == [("stopped",)]
        assert episodes_have_all_steps(db) == []
    finally:
        kernel.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: rows(db, "SELECT status FROM workers") == [("stopped",)], 30, "stopped")
    assert '"000001": "stopped"' in kernel.rest()
    exit_code = rows(db, "SELECT exit_code FROM workers")[0][0]
    assert exit_code == (0 if signalled == "SIGTERM" else -signal.SIGKILL)
    assert episodes_have_all_steps(db) == []
    assert orphan_steps(db) == []


def test_a_stop_from_another_process_never_signals_a_reused_pid(
    db: Path, kernels: list[Kernel]
) -> None:
    """A worker row whose pid now belongs to another process (its start time differs) is
    never signalled from here."""
    from nbtrain.dispatch.remote_stop import end_workers

    kernel = _running_kernel(db, kernels, workers=1)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        conn = sqlite3.connect(db)
        with conn:  # the row now names the bystander's pid, with the worker's start time
            conn.execute("UPDATE workers SET pid = ?", (bystander.pid,))
        conn.close()
        assert end_workers(db, kernel.run_id, ["000001"]) == {}
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
