"""Faults produced for real: killed workers, stops, failing agents, garbage on the pipe."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import nbtrain
from tests.kit.processes import pid_alive, wait_gone
from tests.kit.truth import episodes_have_all_steps, no_live_rows, orphan_steps

pytestmark = pytest.mark.slow


def config(**overrides: object) -> nbtrain.TrainConfig:
    fields: dict[str, object] = {
        "env_id": "FrozenLake-v1",
        "env_kwargs": {"is_slippery": False},
        "agent": "q_learning",
        "episodes": 10,
        "max_steps_per_episode": 50,
        "workers": 2,
    }
    fields.update(overrides)
    return nbtrain.TrainConfig.model_validate(fields)


def slow(episodes: int = 10_000, **overrides: object) -> nbtrain.TrainConfig:
    return config(
        agent="pipeline_agents:Slow", episodes=episodes, agent_kwargs={"sleep": 0.002}, **overrides
    )


def wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def worker_pids(run: nbtrain.Run) -> dict[str, int]:
    with sqlite3.connect(run.db) as con:
        return dict(
            con.execute(
                "SELECT worker_id, pid FROM workers WHERE run_id = ?", (run.run_id,)
            ).fetchall()
        )


def test_sigkill_one_worker_others_carry_on(db: Path) -> None:
    run = nbtrain.launch(slow(episodes=60), db=db)
    wait_for(lambda: len(run.episodes()) >= 2)
    victim = worker_pids(run)["000001"]
    os.kill(victim, signal.SIGKILL)
    statuses = run.wait(timeout=120)
    assert statuses == {"000001": "failed", "000002": "completed"}
    summary = run.summary().set_index("worker_id")
    assert summary.loc["000001", "exit_code"] == -signal.SIGKILL
    assert summary.loc["000002", "episodes"] == 60
    workers = run.store.workers(run.run_id).set_index("worker_id")
    assert "SIGKILL" in workers.loc["000001", "error"]
    assert run.run_status == "failed"
    # No steps of the unfinished episode are left behind.
    last = run.episodes(worker_id=1)["ep_index"].max()
    assert run.steps(worker_id=1)["ep_index"].max() <= last


def test_stop_on_a_long_run(db: Path) -> None:
    run = nbtrain.launch(slow(), db=db)
    wait_for(lambda: len(run.steps()) > 20)
    pids = worker_pids(run)
    t0 = time.monotonic()
    statuses = run.stop(timeout=10)
    assert time.monotonic() - t0 < 10 + 5
    assert statuses == {"000001": "stopped", "000002": "stopped"}
    for pid in pids.values():
        assert not pid_alive(pid)
    # Telemetry committed when stop() returns: another connection sees the final rows.
    with sqlite3.connect(db) as con:
        rows = dict(
            con.execute(
                "SELECT worker_id, status FROM workers WHERE run_id=?", (run.run_id,)
            ).fetchall()
        )
    assert rows == statuses
    assert run.run_status == "stopped"


def test_stop_one_worker(db: Path) -> None:
    run = nbtrain.launch(slow(), db=db)
    wait_for(lambda: all(s == "running" for s in run.status().values()))
    run.stop(worker_id="000002", timeout=10)
    assert run.status()["000002"] == "stopped"
    assert run.status()["000001"] == "running"
    run.stop()
    assert run.status() == {"000001": "stopped", "000002": "stopped"}
    with pytest.raises(nbtrain.UnknownWorkerError):
        run.stop(worker_id="000009")


def test_failing_custom_agent_reports_traceback(db: Path) -> None:
    # Random walks on CliffWalking need far more than 30 steps to reach the goal, so the
    # agent fails inside episode 0 after some of its steps were already sent.
    run = nbtrain.launch(
        config(
            env_id="CliffWalking-v1",
            env_kwargs={},
            agent="pipeline_agents:Raises",
            agent_kwargs={"fail_at": 30},
            workers=1,
        ),
        db=db,
    )
    assert run.wait(timeout=60) == {"000001": "failed"}
    workers = run.store.workers(run.run_id)
    row = workers.iloc[0]
    assert "agent exploded on purpose" in row["error"]
    assert "Traceback" in row["traceback"]
    assert row["exit_code"] != 0
    assert len(run.episodes()) == 0
    assert len(run.steps()) == 0, "steps of the unfinished episode must not stay"


def test_a_batch_that_cannot_be_encoded_leaves_the_database_true(db: Path) -> None:
    # Random walks on CliffWalking take hundreds of steps, so full Steps events are encoded
    # early at episode ends; the bad extras of episode 3 drop the batch they sit in, early
    # steps included. What the database holds must still be whole episodes.
    run = nbtrain.launch(
        config(
            env_id="CliffWalking-v1",
            env_kwargs={},
            agent="pipeline_agents:BadExtrasAfter",
            agent_kwargs={"bad_after": 3},
            max_steps_per_episode=400,
            episodes=50,
            workers=1,
        ),
        db=db,
    )
    assert run.wait(timeout=60) == {"000001": "failed"}
    assert "returned float" in run.store.workers(run.run_id).iloc[0]["error"]
    stored = sorted(run.episodes()["ep_index"])
    assert stored == list(range(len(stored)))
    assert len(stored) <= 3  # episodes 0-2 at most (how many got out depends on timing)
    assert episodes_have_all_steps(db) == []
    assert orphan_steps(db) == []  # the failed worker's unfinished steps were removed
    no_live_rows(db, run.run_id)


def test_garbage_on_the_telemetry_pipe_is_counted_and_ingest_goes_on(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="nbtrain")
    run = nbtrain.launch(config(agent="pipeline_agents:Garbage", episodes=5, workers=2), db=db)
    assert run.wait(timeout=60) == {"000001": "completed", "000002": "completed"}
    assert len(run.episodes()) == 10
    codes = {getattr(r, "code", None) for r in caplog.records}
    assert "LOG_SERVICE_SQLITE_DESERIALIZATION_FAILED" in codes


def test_a_frame_stamped_with_another_run_is_refused_and_logged(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A valid frame with another run's or worker's ids is counted and logged (it was only
    counted), and nothing of it is stored under any id."""
    caplog.set_level("WARNING", logger="nbtrain")
    run = nbtrain.launch(config(agent="pipeline_agents:Impostor", episodes=5, workers=1), db=db)
    assert run.wait(timeout=60) == {"000001": "completed"}
    assert len(run.episodes()) == 5
    messages = [r.getMessage() for r in caplog.records]
    assert any("stamped run '01ARZ3NDEKTSV4RRFFQ69G5FAV' worker '000009'" in m for m in messages)
    conn = sqlite3.connect(db)
    try:
        for table in ("runs", "workers", "episodes", "step_chunks"):
            ids = {r[0] for r in conn.execute(f"SELECT DISTINCT run_id FROM {table}")}
            assert ids == {run.run_id}, table
    finally:
        conn.close()


def test_chatty_worker_never_blocks(db: Path) -> None:
    run = nbtrain.launch(config(agent="pipeline_agents:Chatty", episodes=30, workers=1), db=db)
    assert run.wait(timeout=120) == {"000001": "completed"}
    assert len(run.episodes()) == 30
    output = run.store.workers(run.run_id).iloc[0]["output"]
    assert "xxxx" in output
    assert "eeee" in output


def test_read_while_a_run_writes(db: Path) -> None:
    run = nbtrain.launch(slow(episodes=40), db=db)
    seen = []
    while run.run_status == "running":
        seen.append(len(nbtrain.TelemetryStore(db).episodes(run.run_id)))
        time.sleep(0.1)
    run.wait(timeout=60)
    assert seen == sorted(seen), "committed episodes never disappear"
    assert any(0 < n < 80 for n in seen), f"readers saw the run live: {seen}"
    assert len(run.episodes()) == 80


def test_bad_config_launches_nothing(db: Path) -> None:
    with pytest.raises(ValidationError):
        nbtrain.launch({"env_id": "FrozenLake-v1", "episodes": 0}, db=db)
    with pytest.raises(ValidationError):
        nbtrain.launch({"env_id": "NoSuchEnv-v0", "episodes": 3}, db=db)
    with pytest.raises(TypeError, match="config must be"):
        nbtrain.launch(42, db=db)  # type: ignore[arg-type]
    assert not db.exists()
    assert not (db.parent / "nbtrain-runs").exists()


def test_restart_continues_the_episode_counter(db: Path) -> None:
    run = nbtrain.launch(slow(episodes=40, workers=1), db=db)
    wait_for(lambda: len(run.episodes()) >= 3)
    run.stop()
    done = len(run.episodes())
    assert run.status() == {"000001": "stopped"}
    running = nbtrain.launch(slow(episodes=40, workers=1), db=db)
    try:
        with pytest.raises(nbtrain.RunError, match="only a stopped or failed"):
            running.restart(1)
    finally:
        running.stop()
    run.restart("w1")
    assert run.status() == {"000001": "running"}
    assert run.wait(timeout=120) == {"000001": "completed"}
    episodes = run.episodes()
    assert episodes["ep_index"].tolist() == list(range(40))
    assert done < 40
    assert episodes["episode_id"].is_unique


def test_a_refused_restart_of_a_running_worker_keeps_its_stored_steps(db: Path) -> None:
    """Regression: restart() discarded the running episode's committed steps before it
    found the worker running and refused."""
    run = nbtrain.launch(
        {"env_id": "MountainCar-v0", "agent": "random", "episodes": 3, "workers": 1,
         "step_delay": 0.005},
        db=db,
    )  # fmt: skip

    def unfinished() -> int:  # stored steps of the episode in progress
        return len(run.steps()) - int(run.episodes()["length"].sum())

    try:
        wait_for(lambda: unfinished() >= 50)
        before = len(run.steps())
        with pytest.raises(nbtrain.RunError, match="only a stopped or failed"):
            run.restart(1)
        assert len(run.steps()) >= before
    finally:
        run.wait(timeout=60)
    assert run.status() == {"000001": "completed"}
    episodes = run.episodes()
    assert len(run.steps()) == int(episodes["length"].sum()) == 3 * 200


@pytest.mark.parametrize(
    ("timeout", "error", "match"),
    [("x", TypeError, "number of seconds, not str"), (True, TypeError, "not bool"),
     (-1, ValueError, ">= 0, not -1"), (float("nan"), ValueError, "not nan")],
)  # fmt: skip
def test_a_bad_timeout_is_refused_before_anything_is_asked(
    db: Path, timeout: object, error: type, match: str
) -> None:
    """Regression: stop(timeout="x") marked the worker stopping, then failed on the
    arithmetic; the lease thread then ignored stop requests from other processes for it."""
    run = nbtrain.launch(slow(workers=1), db=db)
    try:
        with pytest.raises(error, match=match):
            run.stop(timeout=timeout)  # type: ignore[arg-type]
        with pytest.raises(error, match=match):
            run.wait(timeout=timeout)  # type: ignore[arg-type]
        assert run._session is not None
        assert not run._session.is_stopping("000001")
        assert run.status() == {"000001": "running"}
    finally:
        assert run.stop() == {"000001": "stopped"}


def test_timeouts_take_numpy_numbers_and_wait_takes_infinity(db: Path) -> None:
    run = nbtrain.launch(config(episodes=3, workers=1), db=db)
    assert run.wait(timeout=float("inf")) == {"000001": "completed"}  # as None: no limit
    assert run.wait(timeout=np.float64(0.5)) == {"000001": "completed"}
    with pytest.raises(ValueError, match="finite number of seconds"):
        run.stop(timeout=float("inf"))


def test_wait_timeout_leaves_workers_running(db: Path) -> None:
    run = nbtrain.launch(slow(workers=1), db=db)
    with pytest.raises(TimeoutError, match="still running"):
        run.wait(timeout=0.3)
    assert run.status() == {"000001": "running"}
    run.stop()
    assert run.status() == {"000001": "stopped"}


def test_keyboard_interrupt_in_wait_stops_workers(db: Path) -> None:
    """Interrupt a real process blocked in wait(), as Jupyter's Interrupt does."""
    script = f"""
import sys, nbtrain
sys.path.insert(0, {str(Path(__file__).resolve().parents[1] / "helpers")!r})
run = nbtrain.launch(dict(env_id='FrozenLake-v1', agent='pipeline_agents:Slow',
                          agent_kwargs={{'sleep': 0.002}}, episodes=10000, workers=2),
                     db='k.sqlite')
print(run.run_id, flush=True)
try:
    run.wait()
except KeyboardInterrupt:
    print(sorted(run.status().values()), flush=True)
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=db.parent
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert out.strip() == "['stopped', 'stopped']"
    run = nbtrain.Run.open(run_id, db=db.parent / "k.sqlite")
    assert run.status() == {"000001": "stopped", "000002": "stopped"}
    for pid in worker_pids(run).values():
        assert wait_gone(pid, 5)
