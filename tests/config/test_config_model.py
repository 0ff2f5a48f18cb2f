"""TrainConfig fields: defaults, ranges, workers, telemetry, mode, copies, worker configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from nbtrain.config import TelemetryConfig, TrainConfig, WorkerSpec
from nbtrain.dispatch.runfiles import write_worker_config
from nbtrain.seeding import worker_seed
from nbtrain.worker.config_file import (
    TelemetrySpec,
    WorkerConfig,
    load_worker_config,
)


def save_policy(path: Path, env_id: str = "FrozenLake-v1") -> Path:
    """A real policy file (an untrained q_learning table) for ``env_id``."""
    import gymnasium as gym

    from nbtrain.agents import QLearningAgent

    env = gym.make(env_id)
    QLearningAgent(env.observation_space, env.action_space, seed=0).save(path)
    env.close()
    return path


def make(**fields: Any) -> TrainConfig:
    fields.setdefault("episodes", 1)
    fields.setdefault("env_id", "FrozenLake-v1")
    return TrainConfig(**fields)


def error_text(**fields: Any) -> str:
    with pytest.raises(ValidationError) as info:
        make(**fields)
    return str(info.value)


def test_defaults() -> None:
    config = TrainConfig(env_id="FrozenLake-v1", episodes=3)
    assert config.name == "FrozenLake-v1-q_learning"
    assert config.env_kwargs == {}
    assert config.agent == "q_learning"
    assert config.agent_kwargs == {}
    assert config.max_steps_per_episode is None  # the env's registered limit
    assert config.step_limit == 100
    assert config.checkpoint_every == 100
    assert config.seed == 0
    assert config.workers == 1
    assert config.worker_ids == ["000001"]
    assert config.step_delay == 0.0
    assert config.telemetry == TelemetryConfig()
    assert config.mode == "train"
    assert config.policy_path is None


def test_frozen() -> None:
    config = make()
    with pytest.raises(ValidationError, match="frozen"):
        config.episodes = 5


@pytest.mark.parametrize("key", ["bogus", "episode", "worker_ids"])
def test_unknown_keys_are_named(key: str) -> None:
    text = error_text(**{key: 1})
    assert key in text
    assert "Extra inputs are not permitted" in text


def test_unknown_keys_in_parts_are_named() -> None:
    assert "colour" in error_text(telemetry={"colour": 1})
    with pytest.raises(ValidationError, match="speed"):
        WorkerSpec(speed=1)  # type: ignore[call-arg]


def test_episodes_required() -> None:
    with pytest.raises(ValidationError, match="episodes"):
        TrainConfig(env_id="FrozenLake-v1")  # type: ignore[call-arg]


@pytest.mark.parametrize("field", ["episodes", "max_steps_per_episode", "checkpoint_every"])
@pytest.mark.parametrize("value", [0, -3, True, "5", 1.5, None])
def test_positive_int_fields_reject(field: str, value: object) -> None:
    if value is None and field != "episodes":
        return  # None is allowed there: the registered limit / only at the end
    assert field in error_text(**{field: value})


def test_numpy_integers_are_accepted_as_ints() -> None:
    config = make(episodes=np.int64(4), max_steps_per_episode=np.uint16(50), seed=np.int32(9))
    assert (config.episodes, config.max_steps_per_episode, config.seed) == (4, 50, 9)
    assert type(config.episodes) is int


@pytest.mark.parametrize("value", [-1, 2**63, True, "0"])
def test_seed_rejects(value: object) -> None:
    assert "seed" in error_text(seed=value)


# "0.1": a number in a string is a mistake here as for every integer field (it was accepted)
@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf"), True, "fast", "0.1"])
def test_step_delay_rejects(value: object) -> None:
    assert "step_delay" in error_text(step_delay=value)


def test_step_delay_accepts_ints_and_numpy() -> None:
    assert make(step_delay=1).step_delay == 1.0
    assert make(step_delay=np.float32(0.5)).step_delay == 0.5


def test_name_default_and_explicit() -> None:
    assert make(agent="random").name == "FrozenLake-v1-random"
    assert make(name="mine").name == "mine"
    assert make(name="  ").name == "FrozenLake-v1-q_learning"
    assert make(name=None).name == "FrozenLake-v1-q_learning"


# -- telemetry -------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", ["all", "none", 1, 10, np.int64(3)])
def test_telemetry_steps_accepts(steps: object) -> None:
    assert TelemetryConfig(steps=steps).steps == steps  # type: ignore[arg-type]


@pytest.mark.parametrize("steps", [0, -2, True, "some", 1.5, None])
def test_telemetry_steps_rejects(steps: object) -> None:
    with pytest.raises(ValidationError) as info:
        TelemetryConfig(steps=steps)  # type: ignore[arg-type]
    text = str(info.value)
    assert "steps must be 'all', 'none' or an integer n >= 1" in text
    assert repr(steps) in text


def test_telemetry_frames_and_frame_every() -> None:
    with pytest.raises(ValidationError, match="frames"):
        TelemetryConfig(frames="gif")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="frame_every"):
        TelemetryConfig(frame_every=0)
    spec = TelemetryConfig(steps=5, frames="ansi", frame_every=2).to_spec()
    assert spec == TelemetrySpec(steps=5, frames="ansi", frame_every=2)


def test_telemetry_from_dict() -> None:
    assert make(telemetry={"steps": "none"}).telemetry.steps == "none"


# -- mode and policy_path --------------------------------------------------------------------


def test_eval_needs_policy_path() -> None:
    assert "mode='eval' needs a policy for worker 000001: set policy_path" in error_text(
        mode="eval"
    )


def test_mode_rejects_other_values() -> None:
    assert "mode" in error_text(mode="test")


def test_policy_path_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    text = error_text(policy_path=missing)
    assert f"policy_path {str(missing)!r} does not exist" in text


def test_policy_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_policy(tmp_path / "policy.json")
    monkeypatch.chdir(tmp_path)
    config = make(mode="eval", policy_path="policy.json")
    assert config.policy_path == tmp_path / "policy.json"
    assert config.worker_configs()[0].policy_path == str(tmp_path / "policy.json")
    assert config.canonical_payload()["policy_path"] == str(tmp_path / "policy.json")


# -- workers ---------------------------------------------------------------------------------


def test_workers_count() -> None:
    assert make(workers=3).worker_ids == ["000001", "000002", "000003"]
    assert make(workers=np.int64(2)).worker_ids == ["000001", "000002"]


@pytest.mark.parametrize("workers", [0, -1, True, "2", 2.0, [], {"a": 1}])
def test_workers_rejects(workers: object) -> None:
    text = error_text(workers=workers)
    assert "workers" in text


def test_workers_list_normalizes_and_fills_auto_ids() -> None:
    config = make(workers=[7, "gpu_a", None])
    assert config.worker_ids == ["000007", "gpu_a", "000001"]
    config = make(workers=[None, WorkerSpec(), 1, "W2", WorkerSpec(worker_id=np.int64(4))])
    assert config.worker_ids == ["000003", "000005", "000001", "000002", "000004"]


def test_workers_from_numpy_array_and_tuple_and_dicts() -> None:
    assert make(workers=np.array([3, 4])).worker_ids == ["000003", "000004"]
    assert make(workers=(5, None)).worker_ids == ["000005", "000001"]
    assert make(workers=[{"worker_id": "gpu", "seed": 3}]).worker_ids == ["gpu"]


@pytest.mark.parametrize(
    ("item", "cause"),
    [
        ({"worker_id": 1, "sede": 3}, "sede: Extra inputs are not permitted"),
        ({"worker_id": 1, "seed": "x"}, "seed: Input should be a valid integer"),
        ({"worker_id": "GPU-A"}, "worker_id: invalid worker id 'GPU-A'"),
    ],
)
def test_a_bad_worker_dict_names_its_problem_once(item: dict[str, object], cause: str) -> None:
    """Regression: the cause came last of four errors, after pydantic's union noise
    ('workers.function-after[functools.partial(...)]...')."""
    with pytest.raises(ValidationError) as info:
        make(workers=[None, item])
    assert info.value.error_count() == 1
    text = str(info.value)
    assert f"workers[1] is not a valid WorkerSpec: {cause}" in text
    assert "function-after" not in text


@pytest.mark.parametrize(
    ("workers", "first", "second"),
    [
        ([7, "000007"], "7", "'000007'"),
        (["w7", np.int64(7)], "'w7'", "np.int64(7)"),
        ([WorkerSpec(worker_id="A"), "a"], "'A'", "'a'"),
    ],
)
def test_duplicate_worker_ids_name_both_spellings(
    workers: list[object], first: str, second: str
) -> None:
    text = error_text(workers=workers)
    assert "worker ids must be unique in a run" in text
    assert first in text
    assert second in text


@pytest.mark.parametrize("bad", ["gpu-a", "../x", "", "a b", -1, 1.5, True, "x" * 33])
def test_invalid_worker_ids_in_lists(bad: object) -> None:
    text = error_text(workers=[None, bad])
    assert "workers" in text
    assert repr(bad) in text


@pytest.mark.parametrize("bad", ["gpu-a", -1, True, 2.5])
def test_worker_spec_rejects_invalid_ids(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        WorkerSpec(worker_id=bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("seed", [-1, 2**63, True, "3"])
def test_worker_spec_rejects_bad_seeds(seed: object) -> None:
    with pytest.raises(ValidationError, match="seed"):
        WorkerSpec(seed=seed)  # type: ignore[arg-type]


def test_worker_seeds_derive_from_run_seed_and_id_not_position() -> None:
    config = make(seed=11, workers=["a", 3, WorkerSpec(worker_id="c", seed=99)])
    seeds = {w.worker_id: w.seed for w in config.worker_configs()}
    assert seeds == {"a": worker_seed(11, "a"), "000003": worker_seed(11, "000003"), "c": 99}
    grown = make(seed=11, workers=["z", 3, "a"])
    assert {w.worker_id: w.seed for w in grown.worker_configs()}["a"] == seeds["a"]
    assert make(seed=12, workers=["a"]).worker_configs()[0].seed != seeds["a"]


# -- worker configs ----------------------------------------------------------------------------


def test_worker_configs_are_fully_resolved(tmp_path: Path) -> None:
    config = make(
        name="run",
        env_kwargs={"is_slippery": False},
        agent_kwargs={"alpha": 0.5},
        episodes=7,
        max_steps_per_episode=20,
        workers=[None, WorkerSpec(worker_id=9, seed=5, agent_kwargs={"gamma": 0.9})],
        step_delay=0.25,
        telemetry={"steps": 2, "frames": "ansi", "frame_every": 3},
    )
    configs = config.worker_configs("01J9Z8Y7X6W5V4T3S2R1Q0P9NM", run_dir=str(tmp_path))
    assert [type(c) for c in configs] == [WorkerConfig, WorkerConfig]
    first, second = configs
    assert first.worker_id == "000001"
    assert second.worker_id == "000009"
    assert first.run_id == "01J9Z8Y7X6W5V4T3S2R1Q0P9NM"
    assert first.digest == config.digest
    assert first.name == "run"
    assert first.env_id == "FrozenLake-v1"
    assert first.env_kwargs == {"is_slippery": False}
    assert first.agent.kind == "builtin"
    assert first.agent_kwargs == {"alpha": 0.5}
    assert second.agent_kwargs == {"alpha": 0.5, "gamma": 0.9}
    assert (first.episodes, first.max_steps_per_episode) == (7, 20)
    assert first.seed == worker_seed(0, "000001")
    assert second.seed == 5
    assert first.step_delay == 0.25
    assert first.telemetry == TelemetrySpec(steps=2, frames="ansi", frame_every=3)
    assert first.mode == "train"
    assert first.policy_path is None
    assert first.run_dir == str(tmp_path)
    # The struct survives the worker file round trip unchanged.
    path = tmp_path / "worker.json"
    write_worker_config(second, path)
    assert load_worker_config(path) == second


def test_worker_configs_do_not_share_mutable_state() -> None:
    config = make(env_kwargs={"desc": ["SF", "HG"]})
    first = config.worker_configs()[0]
    first.env_kwargs["desc"].append("XX")
    assert config.env_kwargs == {"desc": ["SF", "HG"]}
    assert config.worker_configs()[0].env_kwargs == {"desc": ["SF", "HG"]}


def test_default_run_id_and_dir() -> None:
    only = make().worker_configs()[0]
    assert (only.run_id, only.run_dir) == ("", None)


# -- copies and equality ---------------------------------------------------------------------


def test_model_copy_revalidates() -> None:
    config = make(workers=2)
    bigger = config.model_copy(update={"workers": 3})
    assert bigger.worker_ids == ["000001", "000002", "000003"]
    assert bigger.digest != config.digest
    moved = config.model_copy(update={"env_id": "Taxi-v4"})
    assert moved.name == "Taxi-v4-q_learning"
    named = make(name="keep").model_copy(update={"env_id": "Taxi-v4"})
    assert named.name == "keep"
    with pytest.raises(ValidationError, match="Taxi-v3"):
        config.model_copy(update={"env_id": "Taxi-v3"})
    with pytest.raises(ValidationError, match="bogus"):
        config.model_copy(update={"bogus": 1})
    assert config.model_copy() == config


def test_equality_and_hash_follow_the_digest() -> None:
    a = make(workers=2)
    b = make(workers=[None, None])
    c = make(workers=["1", "w2"])
    assert a == b == c
    assert len({a, b, c}) == 1
    assert a != make(workers=3)
    assert a != "not a config"
