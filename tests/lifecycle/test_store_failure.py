"""The database cannot be written mid-run: the run stops loudly and loses nothing committed."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbtrain
from nbtrain.errors import StoreError
from tests.kit.kernel import Kernel, rows
from tests.kit.processes import pid_alive, wait_for
from tests.kit.truth import episodes_have_all_steps


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MB file system (tmpfs): needs root, as in CI."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the RLIMIT_FSIZE test covers this user")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs as root: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _check_consistent(db: Path, run_id: str) -> None:
    assert episodes_have_all_steps(db) == []
    statuses = {s for (s,) in rows(db, "SELECT status FROM workers WHERE run_id = ?", (run_id,))}
    assert not statuses & {"running", "pending"}, statuses


def test_disk_full_mid_run_fails_the_run_loudly(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(small_disk)
    db = small_disk / "nbtrain.sqlite"
    config = nbtrain.TrainConfig(env_id="FrozenLake-v1", episodes=1_000_000, workers=2,
                                 env_kwargs={"is_slippery": True})  # fmt: skip
    run = nbtrain.launch(config, db=db)
    pids = [int(p) for (p,) in rows(db, "SELECT pid FROM workers WHERE run_id = ?", (run.run_id,))]
    started = time.monotonic()
    with pytest.raises(StoreError, match="could not be written") as info:
        run.wait(timeout=120)
    # Disk full within seconds at full speed; the failure is noticed and raised within 5 s.
    elapsed = time.monotonic() - started
    assert "full" in str(info.value).lower() or "disk" in str(info.value).lower(), info.value
    statuses = run.status()
    assert set(statuses.values()) == {"failed"}, statuses
    summary_errors = [e for e in run.store.workers(run.run_id)["error"] if isinstance(e, str)]
    for pid in pids:
        wait_for(lambda pid=pid: not pid_alive(pid), 5, f"worker {pid} to be gone")
    assert elapsed < 120
    # What was committed before the failure is consistent: episodes have all their steps.
    assert episodes_have_all_steps(db) == []
    # Readers in this kernel see the truth at once, though the file could not take it yet.
    frame = nbtrain.TelemetryStore(db).workers(run.run_id)
    assert set(frame["status"]) == {"failed"}
    assert all("could not be written" in e for e in frame["error"]), list(frame["error"])
    # Once there is space again, the held rows go into the file within a few seconds.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    wait_for(
        lambda: (
            {s for (s,) in rows(db, "SELECT status FROM workers WHERE run_id = ?", (run.run_id,))}
            == {"failed"}
        ),
        10,
        "the held statuses to be written",
    )
    errors = [e for (e,) in rows(db, "SELECT error FROM workers WHERE run_id = ?", (run.run_id,))]
    assert all("could not be written" in str(e) for e in errors), errors
    assert rows(db, "SELECT status FROM runs WHERE run_id = ?", (run.run_id,)) == [("failed",)]
    _check_consistent(db, run.run_id)
    del summary_errors


def test_file_size_limit_in_a_kernel_process_fails_the_run_loudly(
    db: Path, kernels: list[Kernel]
) -> None:
    kernel = Kernel(db, episodes=1_000_000, workers=2, delay=0.0,
                    env={"KERNEL_FSIZE": str(3 * 1024 * 1024), "KERNEL_WAIT": "120"})  # fmt: skip
    kernels.append(kernel)
    run_id = kernel.run_id
    out = kernel.rest(timeout=150)
    assert out.startswith("WAIT-ERROR StoreError"), out
    assert "could not be written" in out
    assert kernel.proc.returncode == 0
    for (pid,) in rows(db, "SELECT pid FROM workers WHERE run_id = ?", (run_id,)):
        wait_for(lambda pid=pid: not pid_alive(int(pid)), 5, f"worker {pid} to be gone")
    # The kernel has exited: its held rows were written, or readers correct them.
    _check_consistent_via_store(db, run_id)
    assert episodes_have_all_steps(db) == []


def _check_consistent_via_store(db: Path, run_id: str) -> None:
    frame = nbtrain.TelemetryStore(db).workers(run_id)
    assert set(frame["status"]) == {"failed"}, frame[["worker_id", "status", "error"]]
    _check_consistent(db, run_id)
