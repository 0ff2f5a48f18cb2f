"""Saving and loading configs as JSON and TOML files."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import ValidationError

from nbtrain.config import TrainConfig, WorkerSpec
from nbtrain.errors import ConfigError

HELPERS = Path(__file__).resolve().parents[1] / "helpers"


def save_policy(path: Path, env_id: str = "FrozenLake-v1") -> Path:
    """A real policy file (an untrained q_learning table) for ``env_id``."""
    import gymnasium as gym

    from nbtrain.agents import QLearningAgent

    env = gym.make(env_id)
    QLearningAgent(env.observation_space, env.action_space, seed=0).save(path)
    env.close()
    return path


@pytest.fixture
def fx(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(HELPERS))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(HELPERS), old) if p))
    import config_fixtures

    return config_fixtures


def configs(tmp_path: Path) -> list[TrainConfig]:
    policy = tmp_path / "policy.json"
    save_policy(policy)
    return [
        TrainConfig(env_id="FrozenLake-v1", episodes=2),
        TrainConfig(
            name="full",
            env_id="FrozenLake-v1",
            env_kwargs={"is_slippery": False, "reward_schedule": (1, 0, 0)},
            agent="sarsa",
            agent_kwargs={"alpha": 1, "epsilon": 0.5},
            episodes=5,
            max_steps_per_episode=50,
            seed=4,
            workers=[7, "GPU_A", None, WorkerSpec(seed=3, agent_kwargs={"gamma": 0.5})],
            step_delay=0.5,
            telemetry={"steps": 3, "frames": "ansi", "frame_every": 2},
            mode="eval",
            policy_path=policy,
        ),
        TrainConfig(env_id="CartPole-v1", agent="random", episodes=1, workers=[None, "w3"]),
        TrainConfig(
            env_id="CartPole-v1",
            agent="q_learning",
            agent_kwargs={"bins": [1, 6, 6, 6], "bounds": [[-5, 5], [-3, 3], [-1, 1], [-3, 3]]},
            episodes=1,
        ),
    ]


@pytest.mark.parametrize("suffix", [".json", ".toml", ".JSON"])
def test_round_trip_keeps_the_digest(tmp_path: Path, suffix: str) -> None:
    for index, config in enumerate(configs(tmp_path)):
        path = tmp_path / f"config{index}{suffix}"
        config.save(path)
        loaded = TrainConfig.load(path)
        assert loaded.digest == config.digest
        assert loaded == config
        assert loaded.worker_ids == config.worker_ids


def test_round_trip_with_import_agents(tmp_path: Path, fx: ModuleType) -> None:
    for agent in ("config_fixtures:make_agent", fx.ImportableAgent):
        config = TrainConfig(
            env_id=f"config_fixtures:{fx.GRID_ID}", agent=agent, agent_kwargs={"k": [1]}, episodes=1
        )
        for suffix in (".json", ".toml"):
            path = tmp_path / f"c{suffix}"
            config.save(path)
            assert TrainConfig.load(path).digest == config.digest


def test_saved_json_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    configs(tmp_path)[1].save(path)
    data = json.loads(path.read_text())
    assert data["agent"] == "sarsa"
    assert data["workers"] == [
        {"worker_id": "000007"},
        {"worker_id": "gpu_a"},
        {"worker_id": "000001"},
        {"worker_id": "000002", "seed": 3, "agent_kwargs": {"gamma": 0.5}},
    ]
    assert data["policy_path"] == str(tmp_path / "policy.json")


def test_saved_toml_omits_none(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    TrainConfig(env_id="FrozenLake-v1", episodes=2, workers=[3, None]).save(path)
    data = tomllib.loads(path.read_text())
    assert "policy_path" not in data
    assert data["workers"] == ["000003", "000001"]
    assert data["name"] == "FrozenLake-v1-q_learning"


def test_hand_written_toml(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        'env_id = "FrozenLake-v1"\nepisodes = 10\nworkers = [1, "gpu_a"]\n'
        "[env_kwargs]\nis_slippery = false\n[telemetry]\nsteps = 5\n"
    )
    config = TrainConfig.load(path)
    assert config.worker_ids == ["000001", "gpu_a"]
    assert config.telemetry.steps == 5
    assert config.env_kwargs == {"is_slippery": False}


def test_none_inside_kwargs_cannot_go_to_toml(tmp_path: Path) -> None:
    config = TrainConfig(env_id="FrozenLake-v1", episodes=1, env_kwargs={"desc": None})
    with pytest.raises(ConfigError) as info:
        config.save(tmp_path / "c.toml")
    text = str(info.value)
    assert "env_kwargs.desc is None" in text
    assert "save it as .json" in text
    config.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json").digest == config.digest
    bounds = TrainConfig(
        env_id="CartPole-v1",
        episodes=1,
        agent_kwargs={"bins": 3, "bounds": [None, [-3, 3], None, [-3, 3]]},
    )
    with pytest.raises(ConfigError, match=r"agent_kwargs\.bounds\[0\] is None"):
        bounds.save(tmp_path / "b.toml")


def test_notebook_agent_cannot_be_saved(tmp_path: Path) -> None:
    class MyAgent:
        def __init__(self, observation_space: Any, action_space: Any, seed: int = 0) -> None:
            pass

    config = TrainConfig(env_id="FrozenLake-v1", episodes=1, agent=MyAgent)
    for suffix in (".json", ".toml"):
        with pytest.raises(ConfigError) as info:
            config.save(tmp_path / f"c{suffix}")
        text = str(info.value)
        assert "cannot be saved as text" in text
        assert MyAgent.__qualname__ in text
        assert "Move the agent into a module" in text
        assert not (tmp_path / f"c{suffix}").exists()


@pytest.mark.parametrize("suffix", [".yaml", ".txt", ""])
def test_unsupported_suffix(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"c{suffix}"
    path.write_text("{}")
    for action in (lambda: TrainConfig.load(path), lambda: configs(tmp_path)[0].save(path)):
        with pytest.raises(ConfigError, match=r"use \.json or \.toml") as info:
            action()
        assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(ConfigError) as info:
        TrainConfig.load(path)
    assert f"cannot read config file {str(path)!r}" in str(info.value)
    assert "No such file" in str(info.value)


def test_unwritable_destination(tmp_path: Path) -> None:
    path = tmp_path / "no" / "dir" / "c.json"
    with pytest.raises(ConfigError, match="cannot write config file"):
        configs(tmp_path)[0].save(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", '{"env_id": "FrozenLake-v1",\n "episodes": }', "is not valid JSON"),
        ("bad.json", "[1, 2]", "must hold an object of config fields; got list"),
        ("bad.toml", "env_id = FrozenLake", "is not valid TOML"),
        ("bad.json", b"\xff\xfe{}", "is not UTF-8 text"),
    ],
)
def test_unreadable_content(tmp_path: Path, name: str, content: str | bytes, message: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        TrainConfig.load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"env_id": "FrozenLake-v1",\n "episodes": }')
    with pytest.raises(ConfigError, match="line 2 column 14"):
        TrainConfig.load(path)


def test_bad_field_in_file_is_a_validation_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"env_id": "Taxi-v3", "episodes": 1, "colour": "red"}))
    with pytest.raises(ValidationError) as info:
        TrainConfig.load(path)
    text = str(info.value)
    assert "Taxi-v4" in text
    assert "colour" in text
    assert f"while loading config file {path}" in info.value.__notes__


def test_checkpoint_every_round_trips_and_none_needs_json(tmp_path: Path) -> None:
    config = TrainConfig(env_id="FrozenLake-v1", episodes=2, checkpoint_every=7)
    for suffix in (".json", ".toml"):
        config.save(tmp_path / f"c{suffix}")
        assert TrainConfig.load(tmp_path / f"c{suffix}").checkpoint_every == 7
    never = TrainConfig(env_id="FrozenLake-v1", episodes=2, checkpoint_every=None)
    never.save(tmp_path / "n.json")
    assert TrainConfig.load(tmp_path / "n.json").digest == never.digest
    with pytest.raises(ConfigError, match="checkpoint_every is None and TOML has no null"):
        never.save(tmp_path / "n.toml")


def test_worker_policy_paths_round_trip(tmp_path: Path) -> None:
    policy = save_policy(tmp_path / "policy.json")
    config = TrainConfig(
        env_id="FrozenLake-v1",
        episodes=2,
        mode="eval",
        workers=[
            WorkerSpec(worker_id=3, policy_path=policy),
            WorkerSpec(worker_id=4, policy_path=policy),
        ],
    )
    for suffix in (".json", ".toml"):
        config.save(tmp_path / f"c{suffix}")
        again = TrainConfig.load(tmp_path / f"c{suffix}")
        assert again.digest == config.digest
        assert again.worker_policies() == {"000003": policy, "000004": policy}
