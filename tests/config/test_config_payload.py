"""Rebuilding a past run's TrainConfig from its stored canonical payload."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nbtrain import TrainConfig, WorkerSpec
from nbtrain.errors import ConfigError


def notebook_agent() -> type:
    """A class that cannot be imported by path (like one defined in a notebook cell)."""

    class NotebookAgent:
        def __init__(self, observation_space: Any, action_space: Any, seed: int = 0) -> None:
            self.n = int(action_space.n)

        def act(self, obs: Any, explore: bool = True) -> int:
            return 0

        def learn(self, *args: Any) -> None:
            return None

    return NotebookAgent


@pytest.mark.parametrize("agent", ["q_learning", "sarsa", "nbtrain.agents:RandomAgent"])
def test_a_stored_payload_rebuilds_an_equal_config(agent: str) -> None:
    config = TrainConfig(
        env_id="FrozenLake-v1",
        env_kwargs={"is_slippery": False},
        agent=agent,
        agent_kwargs={} if ":" in agent else {"alpha": 0.3},
        episodes=7,
        workers=[7, WorkerSpec(worker_id="gpu_a", seed=3), None],
        telemetry={"steps": 5},
    )
    stored = json.loads(json.dumps(config.canonical_payload()))  # as it is in runs.config
    rebuilt = TrainConfig.from_payload(stored)
    assert rebuilt.digest == config.digest
    assert rebuilt.canonical_payload() == config.canonical_payload()


def test_a_notebook_agent_must_be_passed_again() -> None:
    NotebookAgent = notebook_agent()
    config = TrainConfig(env_id="FrozenLake-v1", agent=NotebookAgent, episodes=3, workers=2)
    stored = json.loads(json.dumps(config.canonical_payload()))
    with pytest.raises(
        ConfigError, match=r"NotebookAgent' was defined in a notebook.*agent=NotebookAgent$"
    ):
        TrainConfig.from_payload(stored)
    rebuilt = TrainConfig.from_payload(stored, agent=NotebookAgent)
    assert rebuilt.digest == config.digest


def test_a_damaged_payload_names_the_field() -> None:
    stored = TrainConfig(env_id="FrozenLake-v1", episodes=3).canonical_payload()
    stored["episodes"] = 0
    with pytest.raises(ValueError, match="episodes"):
        TrainConfig.from_payload(stored)


def test_a_different_agent_is_refused() -> None:
    # Found in review: any agent was accepted and silently changed the digest.
    stored = TrainConfig(env_id="FrozenLake-v1", episodes=3).canonical_payload()
    with pytest.raises(ConfigError, match=r"'sarsa' is not the agent of this run.*'q_learning'"):
        TrainConfig.from_payload(stored, agent="sarsa")
    assert TrainConfig.from_payload(stored, agent="q_learning").canonical_payload() == stored


def cell_agent(action: int) -> type:
    """``NotebookAgent`` as a notebook cell defines it, in two versions."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(  # the way a kernel runs a cell: no source file behind it
        "class NotebookAgent:\n"
        "    def __init__(self, observation_space, action_space, seed=0): pass\n"
        f"    def act(self, obs, explore=True): return {action}\n"
        "    def learn(self, *args): return None\n",
        namespace,
    )
    return namespace["NotebookAgent"]  # type: ignore[no-any-return]


def test_an_edited_notebook_agent_is_refused() -> None:
    agent = cell_agent(0)
    stored = TrainConfig(env_id="FrozenLake-v1", agent=agent, episodes=3)
    payload = stored.canonical_payload()
    with pytest.raises(ConfigError, match="source changed"):
        TrainConfig.from_payload(payload, agent=cell_agent(1))
    assert TrainConfig.from_payload(payload, agent=agent).digest == stored.digest
