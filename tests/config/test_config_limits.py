"""Time limits resolved from the env's registration, caps on counts, and agent factories
checked against their signatures before launch."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from pydantic import ValidationError

from nbtrain.config import DEFAULT_STEP_LIMIT, MAX_COUNT, MAX_WORKERS, TrainConfig, WorkerSpec


def error_text(**fields: Any) -> str:
    fields.setdefault("env_id", "FrozenLake-v1")
    fields.setdefault("episodes", 3)
    with pytest.raises(ValidationError) as info:
        TrainConfig(**fields)
    return str(info.value)


# -- time limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "limit"),
    [("FrozenLake-v1", 100), ("Taxi-v4", 200), ("CartPole-v1", 500), ("MountainCar-v0", 200)],
)
def test_default_is_the_registered_limit(env_id: str, limit: int) -> None:
    assert gym.spec(env_id).max_episode_steps == limit
    config = TrainConfig(env_id=env_id, agent="random", episodes=1, workers=2)
    assert config.max_steps_per_episode is None
    assert config.step_limit == limit
    assert [w.max_steps_per_episode for w in config.worker_configs()] == [limit, limit]
    assert config.canonical_payload()["max_steps_per_episode"] == limit


def test_unregistered_limit_falls_back_to_1000() -> None:
    assert gym.spec("CliffWalking-v1").max_episode_steps is None
    config = TrainConfig(env_id="CliffWalking-v1", episodes=1)
    assert config.step_limit == DEFAULT_STEP_LIMIT == 1000
    assert config.worker_configs()[0].max_steps_per_episode == 1000


@pytest.mark.parametrize("value", [7, 100, 5000])
def test_an_explicit_limit_replaces_the_registered_one(value: int) -> None:
    config = TrainConfig(env_id="FrozenLake-v1", episodes=1, max_steps_per_episode=value)
    assert config.step_limit == value
    assert config.worker_configs()[0].max_steps_per_episode == value


def test_default_and_explicit_registered_limit_are_the_same_run() -> None:
    implicit = TrainConfig(env_id="FrozenLake-v1", episodes=1)
    explicit = TrainConfig(env_id="FrozenLake-v1", episodes=1, max_steps_per_episode=100)
    other = TrainConfig(env_id="FrozenLake-v1", episodes=1, max_steps_per_episode=1000)
    assert implicit.digest == explicit.digest != other.digest


# -- caps ----------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["episodes", "max_steps_per_episode", "checkpoint_every"])
@pytest.mark.parametrize("value", [2**64, MAX_COUNT + 1])
def test_counts_over_the_cap_fail_and_name_it(field: str, value: int) -> None:
    text = error_text(**{field: value})
    assert f"{field}={value} is more than 1,000,000,000 (10**9)" in text


def test_counts_at_the_cap_are_allowed() -> None:
    config = TrainConfig(env_id="FrozenLake-v1", episodes=MAX_COUNT, checkpoint_every=MAX_COUNT)
    assert config.worker_configs()[0].episodes == MAX_COUNT


@pytest.mark.parametrize("value", [MAX_WORKERS + 1, 10**6])
def test_worker_count_is_capped(value: int) -> None:
    text = error_text(workers=value)
    assert f"workers must be between 1 and {MAX_WORKERS}" in text
    assert f"got {value}" in text


def test_worker_list_is_capped() -> None:
    text = error_text(workers=list(range(MAX_WORKERS + 1)))
    assert f"workers lists {MAX_WORKERS + 1} workers; nbtrain's cap is {MAX_WORKERS}" in text
    assert len(TrainConfig(env_id="FrozenLake-v1", episodes=1, workers=MAX_WORKERS).worker_ids) == (
        MAX_WORKERS
    )


def test_checkpoint_every_none_and_payload() -> None:
    config = TrainConfig(env_id="FrozenLake-v1", episodes=1, checkpoint_every=None)
    assert config.worker_configs()[0].checkpoint_every is None
    assert config.canonical_payload()["checkpoint_every"] is None
    assert config.digest != TrainConfig(env_id="FrozenLake-v1", episodes=1).digest


# -- import-path and notebook factories: signature checked, never called -------------------


@pytest.fixture
def factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "sig_agents.py").write_text(
        textwrap.dedent(
            """
            CALLS = []

            class Plain:
                def __init__(self, observation_space, action_space, seed=None, speed=1.0):
                    CALLS.append("Plain")

                def act(self, obs, explore=True):
                    return 0

                def learn(self, *args):
                    return None

            def make_open(observation_space, action_space, seed=None, **kwargs):
                CALLS.append("make_open")
                return Plain(observation_space, action_space, seed)

            def needs_depth(observation_space, action_space, seed, depth):
                CALLS.append("needs_depth")

            def no_seed(observation_space, action_space):
                CALLS.append("no_seed")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return "sig_agents"


def test_unknown_keyword_of_an_import_path_agent_fails_at_validation(factories: str) -> None:
    text = error_text(agent=f"{factories}:Plain", agent_kwargs={"sped": 2.0})
    assert "agent 'sig_agents:Plain' cannot be called as" in text
    assert "unexpected keyword argument 'sped'" in text
    assert "did you mean 'speed'?" in text
    assert sys.modules[factories].CALLS == []  # checked without calling it


def test_per_worker_kwargs_are_checked_too(factories: str) -> None:
    text = error_text(
        agent=f"{factories}:Plain",
        workers=[WorkerSpec(worker_id=1), WorkerSpec(worker_id=2, agent_kwargs={"bogus": 1})],
    )
    assert "agent_kwargs of worker 000002" in text
    assert "bogus" in text


def test_known_keywords_and_var_kwargs_factories_pass(factories: str) -> None:
    TrainConfig(
        env_id="FrozenLake-v1", episodes=1, agent=f"{factories}:Plain", agent_kwargs={"speed": 2.0}
    )
    TrainConfig(
        env_id="FrozenLake-v1",
        episodes=1,
        agent=f"{factories}:make_open",
        agent_kwargs={"anything": 1, "else": [1, 2]},
    )
    assert sys.modules[factories].CALLS == []


def test_missing_required_keyword_and_missing_seed_fail(factories: str) -> None:
    assert "missing a required argument: 'depth'" in error_text(agent=f"{factories}:needs_depth")
    assert "got an unexpected keyword argument 'seed'" in error_text(agent=f"{factories}:no_seed")
    TrainConfig(
        env_id="FrozenLake-v1",
        episodes=1,
        agent=f"{factories}:needs_depth",
        agent_kwargs={"depth": 3},
    )


def test_notebook_callables_are_checked_by_signature() -> None:
    calls: list[str] = []

    def factory(
        observation_space: Any, action_space: Any, seed: int | None = None, rate: float = 0.1
    ) -> Any:
        calls.append("called")

    text = error_text(agent=factory, agent_kwargs={"rat": 0.2})
    assert "unexpected keyword argument 'rat'" in text
    assert "did you mean 'rate'?" in text
    assert calls == []


def test_seed_in_agent_kwargs_of_a_factory_is_refused(factories: str) -> None:
    assert "must not contain 'seed'" in error_text(
        agent=f"{factories}:make_open", agent_kwargs={"seed": 1}
    )
