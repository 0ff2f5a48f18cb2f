"""A kernel that is gone (SIGKILLed, or exited): its workers exit, every reader reports the
truth within 5 s, and another process may take the run over only to restart a worker."""

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
from nbtrain.store.liveness import kernel_ended_error
from tests.kit.kernel import Kernel, rows, worker_pids
from tests.kit.processes import pid_alive, wait_for
from tests.kit.truth import episodes_have_all_steps, orphan_steps


def _kill_kernel_mid_run(db: Path, kernels: list[Kernel]) -> tuple[Kernel, str, int]:
    kernel = Kernel(db, episodes=100_000, workers=2, delay=0.002)
    kernels.append(kernel)
    run_id = kernel.run_id
    per_worker = "SELECT COUNT(*) FROM episodes GROUP BY worker_id"
    wait_for(lambda: [n for (n,) in rows(db, per_worker) if n >= 2].__len__() == 2, 30,
             "two episodes from each worker")  # fmt: skip
    pid = kernel.proc.pid
    kernel.proc.send_signal(signal.SIGKILL)
    kernel.proc.wait(5)
    return kernel, run_id, pid


def _workers_exit(db: Path, run_id: str, within: float = 2.5) -> None:
    """Each worker of the run exits within ``within`` seconds of its kernel's death."""
    for pid in worker_pids(db, run_id):
        wait_for(
            lambda pid=pid: not pid_alive(pid), within, f"worker {pid} to exit with its kernel"
        )


def test_dead_kernel_is_reported_failed_by_every_reader(db: Path, kernels: list[Kernel]) -> None:
    _, run_id, kernel_pid = _kill_kernel_mid_run(db, kernels)
    killed_at = time.monotonic()
    pids = worker_pids(db, run_id)
    assert len(pids) == 2
    for pid in pids:
        wait_for(lambda pid=pid: not pid_alive(pid), 2.5, f"worker {pid} to exit with its kernel")

    store = nbtrain.TelemetryStore(db)
    wait_for(lambda: store.workers(run_id)["status"].eq("failed").all(), 5, "failed")
    workers = store.workers(run_id)
    assert time.monotonic() - killed_at <= 5.5
    assert all(f"pid {kernel_pid}" in e and "ended" in e for e in workers["error"])
    # The correction is in the file, so plain SQL agrees (this file is writable).
    assert set(rows(db, "SELECT status FROM workers WHERE run_id = ?", (run_id,))) == {("failed",)}
    assert rows(db, "SELECT status FROM runs WHERE run_id = ?", (run_id,)) == [("failed",)]
    summary = nbtrain.Run.open(run_id, db=db).summary()
    assert set(summary["status"]) == {"failed"}
    wall = summary["wall_time_s"].tolist()
    time.sleep(0.3)
    assert nbtrain.Run.open(run_id, db=db).summary()["wall_time_s"].tolist() == wall
    # No episode without all its steps, and no steps of unfinished episodes left.
    assert episodes_have_all_steps(db) == []
    assert orphan_steps(db) == []  # counted row by row: chunks may span episodes
    cli = subprocess.run(
        [sys.executable, "-m", "nbtrain.cli", "runs", "--db", str(db)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 0
    assert "failed" in cli.stdout
    assert "running" not in cli.stdout


@pytest.mark.parametrize("reader", ["runs", "run"])
def test_the_first_read_after_the_death_already_says_failed(
    db: Path, kernels: list[Kernel], reader: str
) -> None:
    # Regression: runs() read the frame before writing the correction, so its first call
    # after a kernel's death still said "running" (the next one said "failed").
    _, run_id, _ = _kill_kernel_mid_run(db, kernels)
    killed_at = time.monotonic()
    _workers_exit(db, run_id)
    time.sleep(max(0.0, 5.0 - (time.monotonic() - killed_at)))
    assert rows(db, "SELECT status FROM runs WHERE run_id = ?", (run_id,)) == [("running",)]
    store = nbtrain.TelemetryStore(db)
    if reader == "runs":
        status = store.runs().set_index("run_id").loc[run_id, "status"]
    else:
        status = store.run(run_id)["status"]
    assert status == "failed"
    assert rows(db, "SELECT status FROM runs WHERE run_id = ?", (run_id,)) == [("failed",)]


def test_correction_never_blocks_when_the_file_cannot_be_written(
    db: Path, kernels: list[Kernel]
) -> None:
    _, run_id, kernel_pid = _kill_kernel_mid_run(db, kernels)
    # Another process holds the write lock: the reader must not wait for it, nor fail.
    holder = sqlite3.connect(db, timeout=0, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        frame = nbtrain.TelemetryStore(db).workers(run_id)
        assert time.monotonic() - started < 2.0
        assert set(frame["status"]) == {"failed"}
        assert frame["error"].iloc[0] == kernel_ended_error(kernel_pid, frame_host(db, run_id))
        # Not written: plain SQL still shows the stale rows until someone can write.
        assert ("running",) in rows(db, "SELECT status FROM workers WHERE run_id = ?", (run_id,))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert set(nbtrain.TelemetryStore(db).workers(run_id)["status"]) == {"failed"}
    assert set(rows(db, "SELECT status FROM workers WHERE run_id = ?", (run_id,))) == {("failed",)}


@pytest.mark.parametrize("writable", [True, False])
def test_a_dead_owner_s_workers_end_when_it_died_not_when_a_reader_noticed(
    db: Path, kernels: list[Kernel], writable: bool
) -> None:
    # Regression: ended_at was the time of the first read after the death (days later for a
    # run looked at days later), and a summary read that could not write counted wall_time_s
    # up to now, growing with every read.
    _, run_id, _ = _kill_kernel_mid_run(db, kernels)
    killed_at = time.time()
    _workers_exit(db, run_id)
    time.sleep(5.0)  # a reader comes along later (and after the lease timeout)
    holder = sqlite3.connect(db, timeout=0, isolation_level=None)
    if not writable:
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        store = nbtrain.TelemetryStore(db)
        workers = store.workers(run_id).set_index("worker_id")
        summary = store.run_summary(run_id).set_index("worker_id")
        later = store.run_summary(run_id).set_index("worker_id")
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
    last_episode = dict(rows(db, "SELECT worker_id, MAX(ended_at) FROM episodes "
                                 "WHERE run_id = ? GROUP BY worker_id", (run_id,)))  # fmt: skip
    assert len(workers) == 2
    ends = {}
    for wid, worker in workers.iterrows():
        assert worker["status"] == "failed"
        ends[str(wid)] = ended = worker["ended_at"].timestamp()
        assert last_episode[str(wid)] - 1e-3 <= ended <= killed_at  # (datetime64: ns)
        wall = ended - worker["started_at"].timestamp()
        assert summary.loc[wid, "wall_time_s"] == pytest.approx(wall, abs=1e-3)
        assert later.loc[wid, "wall_time_s"] == summary.loc[wid, "wall_time_s"]
    stored = rows(db, "SELECT worker_id, ended_at FROM workers WHERE run_id = ?", (run_id,))
    if writable:
        assert {w: pytest.approx(t) for w, t in stored} == ends
    else:
        assert [t for _, t in stored] == [
            None,
            None,
        ]  # not written: the frame alone tells the truth


@pytest.mark.parametrize("attempt", range(3))
def test_a_dead_kernel_never_leaves_a_checkpoint_ahead_of_the_stored_episodes(
    db: Path, kernels: list[Kernel], attempt: int
) -> None:
    # Regression (QA): after the kernel's SIGKILL each worker saved its policy on the way
    # out, and periodic checkpoints were written once their episodes were *sent*: policy
    # files said episode 92 with 89 stored, and a restart resumed from learning the
    # database never saw (episodes 96-97 played again with ε decayed 3 more times).
    kernel = Kernel(db, episodes=100_000, workers=2, delay=0.003,
                    env={"KERNEL_CHECKPOINT_EVERY": "5"})  # fmt: skip
    kernels.append(kernel)
    run_id = kernel.run_id
    per_worker = "SELECT COUNT(*) FROM episodes GROUP BY worker_id"
    wait_for(lambda: len([n for (n,) in rows(db, per_worker) if n >= 20 + 10 * attempt]) == 2,
             60, "episodes from both workers")  # fmt: skip
    kernel.proc.send_signal(signal.SIGKILL)
    kernel.proc.wait(5)
    _workers_exit(db, run_id, within=5)
    stored = dict(rows(db, "SELECT worker_id, COUNT(*) FROM episodes WHERE run_id = ? "
                           "GROUP BY worker_id", (run_id,)))  # fmt: skip
    folder = db.parent / "nbtrain-runs" / run_id
    for wid, count in stored.items():
        policy = json.loads((folder / f"policy-{wid}.json").read_text())
        assert policy["episode"] <= count, (wid, policy["episode"], count)
        assert policy["episode"] >= 5  # checkpoints were written meanwhile
    run = nbtrain.Run.open(run_id, db=db)
    run.restart("000001")
    run.stop(timeout=30)
    resumed = rows(db, "SELECT resumed_from FROM workers WHERE run_id = ? AND worker_id = ?",
                   (run_id, "000001"))[0][0]  # fmt: skip
    assert isinstance(resumed, str)
    assert "@ep" in resumed
    assert int(resumed.rsplit("@ep", 1)[1]) <= stored["000001"]
    # and the database tells the truth after the kill, the restart and the stop
    assert episodes_have_all_steps(db) == []
    assert orphan_steps(db) == []
    assert rows(db, "SELECT COUNT(*) FROM workers WHERE status IN ('pending', 'running')") == [(0,)]


def frame_host(db: Path, run_id: str) -> str:
    return str(rows(db, "SELECT owner_host FROM runs WHERE run_id = ?", (run_id,))[0][0])


def test_restart_after_the_owner_died_continues_the_episodes(
    db: Path, kernels: list[Kernel]
) -> None:
    _, run_id, _ = _kill_kernel_mid_run(db, kernels)
    run = nbtrain.Run.open(run_id, db=db)
    wait_for(lambda: set(run.status().values()) == {"failed"}, 5, "failed")
    before = rows(db, "SELECT MAX(ep_index) FROM episodes WHERE run_id = ? AND worker_id = ?",
                  (run_id, "000001"))[0][0]  # fmt: skip
    run.restart(1)  # the owner is gone: this process becomes the owner
    owner = rows(db, "SELECT owner_pid FROM runs WHERE run_id = ?", (run_id,))[0][0]
    import os

    assert owner == os.getpid()
    assert run.status()["000001"] == "running"
    wait_for(
        lambda: rows(db, "SELECT MAX(ep_index) FROM episodes WHERE run_id = ? AND worker_id = ?",
                     (run_id, "000001"))[0][0] > before + 2, 30, "new episodes")  # fmt: skip
    run.stop()
    indexes = [r[0] for r in rows(db, "SELECT ep_index FROM episodes WHERE run_id = ? AND "
                                  "worker_id = '000001' ORDER BY ep_index", (run_id,))]  # fmt: skip
    assert indexes == list(range(len(indexes)))  # continues, no gap, no duplicate
    assert run.status()["000001"] == "stopped"
    assert episodes_have_all_steps(db) == []


def _owner(db: Path, run_id: str) -> tuple[object, ...]:
    return rows(db, "SELECT owner_pid, owner_start, owner_host, lease_at FROM runs "
                "WHERE run_id = ?", (run_id,))[0]  # fmt: skip


def _sql(db: Path, sql: str, params: tuple[object, ...]) -> None:
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute(sql, params)
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("change", "worker", "error", "match"),
    [
        (None, 9, nbtrain.UnknownWorkerError, "000009"),
        (None, 1, nbtrain.RunError, "is completed; only a stopped or failed"),
        ("UPDATE workers SET status = 'stopped' WHERE run_id = ?", 1, nbtrain.RunError,
         "already recorded all 3 episodes"),
        ("UPDATE workers SET status = 'failed'; UPDATE runs SET config = NULL WHERE run_id = ?",
         1, nbtrain.RunError, "has no stored config"),
        ("UPDATE workers SET status = 'failed'; UPDATE runs SET digest = '0000' WHERE run_id = ?",
         1, nbtrain.RunError, "does not match its digest"),
    ],
)  # fmt: skip
def test_a_refused_restart_leaves_the_run_to_its_owner(
    db: Path, kernels: list[Kernel], change: str | None, worker: int, error: type, match: str
) -> None:
    """Regression: a restart from another process claimed the run (owner_pid, lease) before
    it checked the worker, so a refused call still made this process the run's owner."""
    kernel = Kernel(db, episodes=3, workers=1, delay=0)
    kernels.append(kernel)
    assert '"000001": "completed"' in kernel.rest()
    run_id = kernel.run_id
    if change is not None:
        for sql in change.split("; "):
            _sql(db, sql, (run_id,) if "?" in sql else ())
    before = _owner(db, run_id)
    assert before[0] == kernel.proc.pid
    with pytest.raises(error, match=match):
        nbtrain.Run.open(run_id, db=db).restart(worker)
    assert _owner(db, run_id) == before
    assert rows(db, "SELECT COUNT(*) FROM episodes WHERE run_id = ?", (run_id,)) == [(3,)]


def test_a_notebook_defined_agent_restarts_in_another_process(
    db: Path, kernels: list[Kernel]
) -> None:
    """Regression: the agent unpickled from the run's row has no source in this process,
    so its hash was taken from the pickle and the restart failed "its source changed"."""
    kernel = Kernel(db, episodes=100_000, workers=1, delay=0, env={"KERNEL_AGENT": "notebook"})
    kernels.append(kernel)
    run_id = kernel.run_id
    wait_for(lambda: rows(db, "SELECT COUNT(*) FROM episodes")[0][0] >= 2, 30, "episodes")
    kernel.proc.send_signal(signal.SIGKILL)
    kernel.proc.wait(5)
    run = nbtrain.Run.open(run_id, db=db)
    wait_for(lambda: run.status() == {"000001": "failed"}, 5, "failed")
    before = len(run.episodes())
    run.restart(1)
    assert run.status() == {"000001": "running"}
    wait_for(lambda: len(run.episodes()) > before + 2, 30, "new episodes")
    run.stop()
    assert run.status() == {"000001": "stopped"}
    agent = run.store.run(run_id)["config"]["agent"]
    assert (agent["kind"], agent["name"]) == ("pickle", "Sleepy")
    assert episodes_have_all_steps(db) == []
