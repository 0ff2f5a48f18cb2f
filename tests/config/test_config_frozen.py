"""A validated TrainConfig cannot be changed in place, down to the JSON values inside it.

Regression: ``cfg.env_kwargs["is_slippery"] = True`` after validation used to go through;
the workers then ran a slippery lake while the digest and the stored config said otherwise.
"""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import msgspec
import pytest

from nbtrain.config import TrainConfig, WorkerSpec
from nbtrain.config.frozen import FrozenConfigError


def make() -> TrainConfig:
    return TrainConfig(
        env_id="FrozenLake-v1",
        env_kwargs={"is_slippery": False, "desc": ["SF", "HG"]},
        agent_kwargs={"alpha": 0.5},
        episodes=3,
        workers=[7, WorkerSpec(worker_id="gpu_a", agent_kwargs={"alpha": 0.2})],
    )


CHANGES: dict[str, Callable[[TrainConfig], Any]] = {
    "env_kwargs set": lambda c: c.env_kwargs.__setitem__("is_slippery", True),
    "env_kwargs del": lambda c: c.env_kwargs.__delitem__("is_slippery"),
    "env_kwargs update": lambda c: c.env_kwargs.update(is_slippery=True),
    "env_kwargs setdefault": lambda c: c.env_kwargs.setdefault("map_name", "8x8"),
    "env_kwargs pop": lambda c: c.env_kwargs.pop("is_slippery"),
    "env_kwargs popitem": lambda c: c.env_kwargs.popitem(),
    "env_kwargs clear": lambda c: c.env_kwargs.clear(),
    "env_kwargs |=": lambda c: c.env_kwargs.__ior__({"is_slippery": True}),
    "nested list append": lambda c: c.env_kwargs["desc"].append("FF"),
    "nested list set": lambda c: c.env_kwargs["desc"].__setitem__(0, "HH"),
    "nested list sort": lambda c: c.env_kwargs["desc"].sort(),
    "nested list +=": lambda c: c.env_kwargs["desc"].__iadd__(["FF"]),
    "agent_kwargs set": lambda c: c.agent_kwargs.__setitem__("alpha", 0.9),
    "workers append": lambda c: c.workers.append(8),  # type: ignore[union-attr]
    "workers remove": lambda c: c.workers.remove(7),  # type: ignore[union-attr]
    "worker spec kwargs": lambda c: c.workers[1].agent_kwargs.update(alpha=1.0),  # type: ignore[index]
}


@pytest.mark.parametrize("change", list(CHANGES.values()), ids=list(CHANGES))
def test_changes_in_place_are_refused_and_nothing_moves(
    change: Callable[[TrainConfig], Any],
) -> None:
    cfg = make()
    before = (cfg.digest, cfg.canonical_json, cfg.model_dump_json())
    with pytest.raises(FrozenConfigError, match="cannot be changed in place"):
        change(cfg)
    assert (cfg.digest, cfg.canonical_json, cfg.model_dump_json()) == before


def test_the_error_names_the_field_and_how_to_change_a_config() -> None:
    cfg = make()
    with pytest.raises(TypeError, match=r"env_kwargs\['desc'\].*model_copy\(update=\{'env_kwargs'"):
        cfg.env_kwargs["desc"].append("FF")
    with pytest.raises(TypeError, match=r"WorkerSpec\.agent_kwargs.*new WorkerSpec"):
        cfg.workers[1].agent_kwargs["alpha"] = 1.0  # type: ignore[index]


def test_defaults_are_read_only_too() -> None:
    cfg = TrainConfig(env_id="FrozenLake-v1", episodes=1)
    with pytest.raises(FrozenConfigError, match="env_kwargs"):
        cfg.env_kwargs["is_slippery"] = False
    with pytest.raises(FrozenConfigError, match="agent_kwargs"):
        cfg.agent_kwargs["alpha"] = 0.2
    with pytest.raises(FrozenConfigError, match=r"WorkerSpec\.agent_kwargs"):
        WorkerSpec(worker_id=1).agent_kwargs["alpha"] = 0.2


def test_the_callers_dicts_are_not_shared() -> None:
    kwargs: dict[str, Any] = {"is_slippery": False, "desc": ["SF", "HG"]}
    cfg = TrainConfig(env_id="FrozenLake-v1", env_kwargs=kwargs, episodes=1)
    digest = cfg.digest
    kwargs["is_slippery"] = True
    kwargs["desc"].append("FF")
    assert cfg.env_kwargs == {"is_slippery": False, "desc": ["SF", "HG"]}
    assert cfg.digest == digest


def test_a_changed_copy_is_the_way_and_validates_again() -> None:
    cfg = make()
    changed = cfg.model_copy(update={"env_kwargs": {**cfg.env_kwargs, "is_slippery": True}})
    assert changed.env_kwargs["is_slippery"] is True
    assert changed.digest != cfg.digest
    with pytest.raises(FrozenConfigError):
        changed.env_kwargs["is_slippery"] = False


def test_frozen_values_copy_pickle_and_serialize_like_plain_ones() -> None:
    cfg = make()
    for twin in (pickle.loads(pickle.dumps(cfg)), copy.deepcopy(cfg), copy.copy(cfg),
                 cfg.model_copy(deep=True)):  # fmt: skip
        assert twin == cfg
        assert twin.canonical_json == cfg.canonical_json
        with pytest.raises(FrozenConfigError):
            twin.env_kwargs["is_slippery"] = True
    plain = {"is_slippery": False, "desc": ["SF", "HG"]}
    assert json.loads(json.dumps(cfg.env_kwargs)) == plain
    assert msgspec.json.decode(msgspec.json.encode(cfg.env_kwargs)) == plain
    assert TrainConfig.model_validate_json(cfg.model_dump_json()) == cfg
    # a copy the user takes is theirs to change
    mine = dict(cfg.env_kwargs)
    mine["is_slippery"] = True
    assert cfg.env_kwargs["is_slippery"] is False


def test_gymnasium_takes_frozen_kwargs() -> None:
    cfg = TrainConfig(env_id="FrozenLake-v1", env_kwargs={"is_slippery": False}, episodes=1)
    env = gym.make(cfg.env_id, **cfg.env_kwargs)
    try:
        assert env.unwrapped.spec is not None
        assert env.unwrapped.spec.kwargs["is_slippery"] is False
    finally:
        env.close()
