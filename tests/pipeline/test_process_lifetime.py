"""No worker outlives its kernel, and interrupting the kernel's process group spares them."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.kit.processes import pid_alive, wait_gone

pytestmark = pytest.mark.slow

# The kernel notes an interrupt with a handler installed before it says it is ready (a
# KeyboardInterrupt could land before its loop's try block on a busy machine).
KERNEL = """
import signal, sys, time, nbtrain
signal.signal(signal.SIGINT, lambda *_: print('interrupted', flush=True))
run = nbtrain.launch(dict(env_id='FrozenLake-v1', agent='random', episodes=10**6,
                          max_steps_per_episode=100, step_delay=0.001, workers=2),
                     db='kernel.sqlite')
print(run.run_id, flush=True)
while True:
    time.sleep(0.1)
"""


def start_kernel(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", KERNEL],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert len(run_id) == 26
    deadline = time.monotonic() + 30
    while True:
        with sqlite3.connect(tmp_path / "kernel.sqlite") as con:
            pids = [
                p
                for (p,) in con.execute(
                    "SELECT pid FROM workers WHERE run_id=? AND status='running'", (run_id,)
                )
            ]
        if len(pids) == 2:
            return proc, pids
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_workers_run_in_their_own_session(tmp_path: Path) -> None:
    kernel, pids = start_kernel(tmp_path)
    try:
        for pid in pids:
            assert os.getsid(pid) == pid, "a worker leads its own session"
            assert os.getpgid(pid) != os.getpgid(kernel.pid)
        # Jupyter's interrupt signals the kernel's whole process group.
        os.killpg(kernel.pid, signal.SIGINT)
        assert kernel.stdout is not None
        assert kernel.stdout.readline().strip() == "interrupted"
        time.sleep(0.5)
        assert all(pid_alive(pid) for pid in pids)
    finally:
        kernel.kill()
        kernel.wait()
    for pid in pids:
        assert wait_gone(pid, 5)


def test_workers_exit_when_the_kernel_is_sigkilled(tmp_path: Path) -> None:
    kernel, pids = start_kernel(tmp_path)
    kernel.kill()
    kernel.wait()
    t0 = time.monotonic()
    for pid in pids:
        assert wait_gone(pid, 10), f"worker {pid} outlived its kernel"
    # Contract: within 2 s. Shared CI machines are noisy, so this is reported, not gated.
    print(f"workers gone {time.monotonic() - t0:.2f} s after the kernel died")
