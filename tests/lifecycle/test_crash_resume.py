"""A worker killed mid-run and restarted resumes learning from its last checkpoint."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import nbtrain
from tests.kit.kernel import rows
from tests.kit.processes import wait_for
from tests.kit.truth import episodes_have_all_steps


def _epsilon_of(run: nbtrain.Run, ep_index: int) -> float:
    steps = run.steps(worker_id=1, ep_index=ep_index, columns=["extras"])
    return float(json.loads(steps["extras"].iloc[0])["epsilon"])


def test_restart_after_sigkill_resumes_from_the_checkpoint(db: Path) -> None:
    config = nbtrain.TrainConfig(
        env_id="FrozenLake-v1",
        env_kwargs={"is_slippery": False},
        episodes=100_000,
        step_delay=0.0005,
        checkpoint_every=20,
        agent_kwargs={"epsilon": 1.0, "epsilon_decay": 0.97, "epsilon_min": 0.01},
    )
    run = nbtrain.launch(config, db=db)
    policy = db.parent / "nbtrain-runs" / run.run_id / "policy-000001.json"
    wait_for(lambda: rows(db, "SELECT COUNT(*) FROM episodes")[0][0] >= 90, 60, "90 episodes")
    wait_for(policy.exists, 10, "a checkpoint")
    assert policy.stat().st_mode & 0o777 == 0o600
    pid = run.store.workers(run.run_id)["pid"].iloc[0]
    os.kill(int(pid), signal.SIGKILL)
    assert run.wait(timeout=30) == {"000001": "failed"}
    error = run.store.workers(run.run_id)["error"].iloc[0]
    assert "SIGKILL" in error
    last = int(rows(db, "SELECT MAX(ep_index) FROM episodes")[0][0])
    eps_before = _epsilon_of(run, last)
    assert eps_before < 0.2  # it had learned to explore less

    run.restart(1)
    wait_for(lambda: rows(db, "SELECT MAX(ep_index) FROM episodes")[0][0] > last + 1, 30,
             "episodes after the restart")  # fmt: skip
    run.stop()
    resumed = rows(db, "SELECT resumed_from FROM workers")[0][0]
    assert resumed is not None
    assert "policy-000001" in str(resumed)
    # ε goes on from the checkpoint, not from 1.0: the checkpoint after E episodes holds the
    # ε that the stored episode E played with (and is never ahead of the stored episodes).
    taken_after = int(str(resumed).rsplit("@ep", 1)[1])
    assert 20 <= taken_after <= last + 1
    assert taken_after % 20 == 0
    eps_after = _epsilon_of(run, last + 1)
    if taken_after <= last:
        assert eps_after == _epsilon_of(run, taken_after)
    assert eps_after < 0.9
    indexes = [i for (i,) in rows(db, "SELECT ep_index FROM episodes ORDER BY ep_index")]
    assert indexes == list(range(len(indexes)))
    assert episodes_have_all_steps(db) == []
