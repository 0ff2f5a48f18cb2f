"""Canonical payload and digest: stable under reordering and spellings, sensitive to content."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbtrain.config import TrainConfig, WorkerSpec
from nbtrain.ids import normalize_worker_id

SRC = Path(__file__).resolve().parents[2] / "src"

BASE: dict[str, Any] = {
    "env_id": "FrozenLake-v1",
    "episodes": 3,
    "env_kwargs": {"is_slippery": False, "map_name": "4x4"},
    "agent_kwargs": {"alpha": 0.5, "gamma": 0.9},
    "workers": [7, "gpu_a", None],
    "telemetry": {"steps": 2, "frames": "ansi", "frame_every": 4},
}


def save_policy(path: Path, env_id: str = "FrozenLake-v1") -> Path:
    """A real policy file (an untrained q_learning table) for ``env_id``."""
    import gymnasium as gym

    from nbtrain.agents import QLearningAgent

    env = gym.make(env_id)
    QLearningAgent(env.observation_space, env.action_space, seed=0).save(path)
    env.close()
    return path


def keys_sorted_everywhere(value: object) -> bool:
    if isinstance(value, dict):
        return list(value) == sorted(value) and all(
            keys_sorted_everywhere(v) for v in value.values()
        )
    if isinstance(value, list):
        return all(keys_sorted_everywhere(v) for v in value)
    return True


def test_canonical_payload_shape() -> None:
    config = TrainConfig(**BASE)
    payload = config.canonical_payload()
    assert set(payload) == {
        "agent",
        "agent_kwargs",
        "checkpoint_every",
        "env_id",
        "env_kwargs",
        "episodes",
        "max_steps_per_episode",
        "mode",
        "name",
        "policy_path",
        "seed",
        "step_delay",
        "telemetry",
        "workers",
    }
    assert keys_sorted_everywhere(payload)
    assert payload["workers"] == [
        {
            "agent_kwargs": {"alpha": 0.5, "gamma": 0.9},
            "policy_path": None,
            "seed": w.seed,
            "worker_id": w.worker_id,
        }
        for w in config.worker_configs()
    ]
    assert [w["worker_id"] for w in payload["workers"]] == ["000007", "gpu_a", "000001"]
    assert payload["telemetry"] == {"frame_every": 4, "frames": "ansi", "steps": 2}
    assert payload["agent"] == {"kind": "builtin", "name": "q_learning", "source_sha256": None}
    assert payload["max_steps_per_episode"] == 100  # FrozenLake-v1 is registered with 100
    assert payload["checkpoint_every"] == 100
    assert payload["step_delay"] == 0.0
    assert json.loads(json.dumps(payload)) == payload


def test_digest_is_sha256_of_canonical_json() -> None:
    config = TrainConfig(**BASE)
    text = json.dumps(
        config.canonical_payload(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert config.canonical_json == text
    assert config.digest == hashlib.sha256(text.encode()).hexdigest()


def test_canonical_payload_is_a_fresh_copy() -> None:
    config = TrainConfig(**BASE)
    payload = config.canonical_payload()
    payload["workers"].clear()
    payload["env_kwargs"]["map_name"] = "8x8"
    assert config.canonical_payload()["workers"]
    assert config.digest == TrainConfig(**BASE).digest


def test_non_ascii_name_is_kept_verbatim() -> None:
    config = TrainConfig(**{**BASE, "name": "Lac gelé ❄"})
    assert '"name":"Lac gelé ❄"' in config.canonical_json


def shuffled(data: object, draw: st.DrawFn) -> object:
    if isinstance(data, dict):
        keys = draw(st.permutations(list(data)))
        return {k: shuffled(data[k], draw) for k in keys}
    if isinstance(data, list):
        return [shuffled(v, draw) for v in data]
    return data


@st.composite
def reordered(draw: st.DrawFn) -> dict[str, Any]:
    result = shuffled(BASE, draw)
    assert isinstance(result, dict)
    return result


@given(reordered())
def test_digest_ignores_key_order(fields: dict[str, Any]) -> None:
    assert TrainConfig(**fields).digest == TrainConfig(**BASE).digest
    assert TrainConfig.model_validate(fields).canonical_json == TrainConfig(**BASE).canonical_json


def spellings(number: int) -> st.SearchStrategy[object]:
    return st.sampled_from(
        [
            number,
            np.int64(number),
            str(number),
            f"w{number}",
            f"W{number:06d}",
            f" {number:08d} ",
            WorkerSpec(worker_id=number),
            WorkerSpec(worker_id=f"w{number}"),
        ]
    )


@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=5, unique=True).flatmap(
        lambda ns: st.tuples(st.just(ns), st.tuples(*(spellings(n) for n in ns)))
    ),
    st.sampled_from(["gpu_a", "GPU_A", " Gpu_A "]),
)
@settings(max_examples=60)
def test_digest_ignores_worker_id_spelling(
    drawn: tuple[list[int], tuple[object, ...]], name: str
) -> None:
    numbers, spelled = drawn
    plain = TrainConfig(env_id="FrozenLake-v1", episodes=1, workers=[*numbers, "gpu_a"])
    other = TrainConfig(env_id="FrozenLake-v1", episodes=1, workers=[*spelled, name])
    assert other.worker_ids == [normalize_worker_id(n) for n in numbers] + ["gpu_a"]
    assert other.digest == plain.digest


@given(st.lists(st.integers(0, 99), min_size=1, max_size=4, unique=True), st.integers(0, 99))
@settings(max_examples=40)
def test_digest_changes_with_any_worker_id(ids: list[int], new: int) -> None:
    base = TrainConfig(env_id="FrozenLake-v1", episodes=1, workers=ids)
    changed = [*ids[:-1], new]
    if new in ids:
        return
    assert TrainConfig(env_id="FrozenLake-v1", episodes=1, workers=changed).digest != base.digest


VARIANTS: list[dict[str, Any]] = [
    {"name": "other"},
    {"env_id": "FrozenLake8x8-v1", "env_kwargs": {}},
    {"env_kwargs": {"is_slippery": True, "map_name": "4x4"}},
    {"agent": "sarsa"},
    {"agent_kwargs": {"alpha": 0.5, "gamma": 0.8}},
    {"episodes": 4},
    {"max_steps_per_episode": 999},
    {"seed": 1},
    {"workers": [7, "gpu_a", None, None]},
    {"workers": [8, "gpu_a", None]},
    {"workers": [7, "gpu_b", None]},
    {"workers": [7, None, "gpu_a"]},
    {"workers": [7, "gpu_a", WorkerSpec(seed=1)]},
    {"workers": [7, "gpu_a", WorkerSpec(agent_kwargs={"epsilon": 0.5})]},
    {"step_delay": 0.01},
    {"telemetry": {"steps": 3, "frames": "ansi", "frame_every": 4}},
    {"telemetry": {"steps": 2, "frames": "none", "frame_every": 4}},
    {"telemetry": {"steps": 2, "frames": "ansi", "frame_every": 5}},
]


def test_digest_changes_with_every_field(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    save_policy(policy)
    variants = [*VARIANTS, {"policy_path": policy}, {"mode": "eval", "policy_path": policy}]
    digests = {TrainConfig(**BASE).digest}
    for update in variants:
        digests.add(TrainConfig(**{**BASE, **update}).digest)
    assert len(digests) == len(variants) + 1


def test_explicit_default_values_do_not_change_the_digest() -> None:
    explicit = TrainConfig(
        **BASE,
        name="FrozenLake-v1-q_learning",
        agent="q_learning",
        max_steps_per_episode=100,  # FrozenLake-v1's registered limit, the default
        seed=0,
        step_delay=0,
        mode="train",
        policy_path=None,
        checkpoint_every=100,
    )
    assert explicit.digest == TrainConfig(**BASE).digest


def test_digest_is_cached() -> None:
    config = TrainConfig(**BASE)
    assert config.digest is config.digest


SCRIPT = textwrap.dedent(
    """
    import json
    from nbtrain.config import TrainConfig, WorkerSpec

    class NotebookAgent:
        def __init__(self, observation_space, action_space, seed=0):
            self.action_space = action_space

        def act(self, obs, explore=True):
            return self.action_space.sample()

        def learn(self, *args):
            return None

    builtin = TrainConfig(
        env_id="FrozenLake-v1", episodes=3, env_kwargs={"map_name": "4x4", "is_slippery": False},
        agent_kwargs={"gamma": 0.9, "alpha": 0.5}, workers=[7, "gpu_a", None],
        telemetry={"frame_every": 4, "frames": "ansi", "steps": 2},
    )
    pickled = TrainConfig(env_id="CartPole-v1", episodes=2, agent=NotebookAgent, workers=2)
    print(json.dumps({
        "builtin": builtin.digest,
        "pickled": pickled.digest,
        "kind": pickled.agent_ref.kind,
        "source": pickled.agent_ref.source_sha256,
    }))
    """
)


def run_script(path: Path, hash_seed: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, str] = json.loads(proc.stdout)
    return result


@pytest.mark.slow
def test_digest_is_identical_across_processes(tmp_path: Path) -> None:
    script = tmp_path / "notebook.py"
    script.write_text(SCRIPT)
    first = run_script(script, "1")
    second = run_script(script, "2")
    assert first == second
    assert first["kind"] == "pickle"
    assert first["builtin"] == TrainConfig(**BASE).digest
    # Editing the notebook class changes the digest.
    script.write_text(SCRIPT.replace("return None", "return {}"))
    assert run_script(script, "1")["pickled"] != first["pickled"]
