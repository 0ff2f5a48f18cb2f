"""run.evaluate(): each worker's own saved policy, played greedily by a worker of the same id."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

import nbtrain
from nbtrain.agents import QLearningAgent
from nbtrain.errors import RunError, UnknownWorkerError

# FrozenLake 4x4 without slipping: DOWN, DOWN, RIGHT, DOWN, RIGHT, RIGHT reaches the goal.
PATH = {0: 1, 4: 1, 8: 2, 9: 1, 13: 2, 14: 2}
LAKE = {"env_id": "FrozenLake-v1", "env_kwargs": {"is_slippery": False}}


def _policy(path: Path, moves: dict[int, int]) -> None:
    env = gym.make("FrozenLake-v1", is_slippery=False)
    agent = QLearningAgent(env.observation_space, env.action_space, seed=0)
    for state, action in moves.items():
        agent.q[state][action] = 1.0
    agent.save(path)


def test_evaluate_plays_each_workers_own_policy(db: Path) -> None:
    train = nbtrain.launch(LAKE | {"episodes": 3, "workers": ["walker", "sitter"]}, db=db)
    train.wait()
    folder = db.parent / "nbtrain-runs" / train.run_id
    # Make the two learned policies visibly different: a mix-up must show.
    _policy(folder / "policy-walker.json", PATH)
    _policy(folder / "policy-sitter.json", dict.fromkeys(range(16), 0))

    ev = train.evaluate(episodes=5)
    assert ev.run_id != train.run_id
    assert ev.wait() == {"walker": "completed", "sitter": "completed"}
    episodes = ev.episodes()
    walker = episodes[episodes["worker_id"] == "walker"]
    sitter = episodes[episodes["worker_id"] == "sitter"]
    assert walker["total_reward"].tolist() == [1.0] * 5
    assert walker["length"].tolist() == [6] * 5
    assert sitter["total_reward"].tolist() == [0.0] * 5
    assert sitter["truncated"].all()
    assert ev.config().mode == "eval"
    # Playing does not run the agent's end-of-episode learning: no decaying ε recorded
    # (regression: eval episodes showed 0.99, 0.9801, ... while playing greedily).
    assert train.episodes()["extras"].str.contains("epsilon").all()
    assert episodes["extras"].tolist() == ["{}"] * 10

    only = train.evaluate(episodes=2, worker_id="walker")
    assert only.wait() == {"walker": "completed"}


def test_evaluate_errors(db: Path) -> None:
    train = nbtrain.launch(LAKE | {"episodes": 2, "workers": 1, "checkpoint_every": None}, db=db)
    train.wait()
    with pytest.raises(UnknownWorkerError):
        train.evaluate(worker_id=9)
    (db.parent / "nbtrain-runs" / train.run_id / "policy-000001.json").unlink()
    with pytest.raises(RunError, match=r"no saved policy.*has no save\(\), or it ended no"):
        train.evaluate()


def test_evaluate_says_why_there_is_no_policy(db: Path) -> None:
    """Regression: an eval run, or a run still before its first checkpoint, was said to have
    an agent without save() or no ended episode."""
    train = nbtrain.launch(LAKE | {"episodes": 3, "workers": 1}, db=db)
    train.wait()
    ev = train.evaluate(episodes=2)
    ev.wait()
    with pytest.raises(RunError, match="an eval run plays a policy and saves none"):
        ev.evaluate()
    running = nbtrain.launch(
        LAKE | {"episodes": 100_000, "step_delay": 0.01, "checkpoint_every": 10**9}, db=db
    )
    try:
        with pytest.raises(RunError, match=r"still running.*checkpoint_every=1000000000"):
            running.evaluate()
    finally:
        running.stop()


def test_raise_for_failures_carries_each_workers_error(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helpers = str(Path(__file__).resolve().parents[1] / "helpers")
    monkeypatch.syspath_prepend(helpers)
    monkeypatch.setenv("PYTHONPATH", helpers)
    run = nbtrain.launch(
        LAKE | {"episodes": 3, "workers": [1, 2], "agent": "pipeline_agents:Raises"}, db=db
    )
    assert run.wait() == {"000001": "failed", "000002": "failed"}
    with pytest.raises(nbtrain.WorkerFailedError) as info:
        run.raise_for_failures()
    assert info.value.run_id == run.run_id
    assert set(info.value.failures) == {"000001", "000002"}
    assert all("agent exploded on purpose" in e for e in info.value.failures.values())
    assert all("Traceback" in (t or "") for t in info.value.tracebacks.values())
    with pytest.raises(nbtrain.WorkerFailedError, match="2 workers failed"):
        run.wait(raise_on_failure=True)
    ok = nbtrain.launch(LAKE | {"episodes": 2}, db=db)
    assert ok.wait(raise_on_failure=True) == {"000001": "completed"}
    ok.raise_for_failures()  # nothing to raise


def test_unknown_worker_error_carries_its_context(db: Path) -> None:
    run = nbtrain.launch(LAKE | {"episodes": 1, "workers": [3, "gpu_a"]}, db=db)
    run.wait()
    with pytest.raises(UnknownWorkerError) as info:
        run.episodes(worker_id=9)
    assert (info.value.run_id, info.value.worker_id, info.value.known) == (
        run.run_id, "000009", ["000003", "gpu_a"],
    )  # fmt: skip
    with pytest.raises(UnknownWorkerError) as again:
        run.stop(9)
    assert again.value.known == ["000003", "gpu_a"]
