"""Env facts for the widgets, checked against gymnasium itself."""

from __future__ import annotations

import gymnasium as gym
import pytest

from nbtrain.widgets.envinfo import env_catalogue, grid_for_env, grid_kind, taxi_decode


def test_taxi_decode_agrees_with_gymnasium_for_every_state() -> None:
    env = gym.make("Taxi-v4").unwrapped
    for state in range(500):
        assert tuple(taxi_decode(state).values()) == tuple(int(x) for x in env.decode(state))
    with pytest.raises(ValueError, match="Taxi state 500"):
        taxi_decode(500)


def test_grids_match_the_envs() -> None:
    lake = grid_for_env("FrozenLake-v1", {"map_name": "8x8"})
    assert lake is not None
    assert lake["kind"] == "frozenlake"
    assert len(lake["rows"]) == 8
    assert lake["rows"][0] == "SFFFFFFF"
    cliff = grid_for_env("CliffWalking-v1")
    assert cliff == {
        "kind": "cliffwalking",
        "rows": ["." * 12, "." * 12, "." * 12, "S" + "C" * 10 + "G"],
    }
    taxi = grid_for_env("Taxi-v4")
    assert taxi is not None
    assert taxi["rows"][1] == "|R: | : :G|"
    assert grid_for_env("CartPole-v1") is None
    assert grid_kind("gymnasium.envs.toy_text:FrozenLake-v1") == "frozenlake"


def test_catalogue_lists_makeable_envs_with_their_space_kinds() -> None:
    facts = {f["id"]: f for f in env_catalogue()}
    assert facts["FrozenLake-v1"] == {
        "id": "FrozenLake-v1",
        "obs": "discrete",
        "action": "discrete",
    }
    assert facts["CartPole-v1"]["obs"] == "box"
    assert "Ant-v5" not in facts or facts["Ant-v5"]["obs"] == "box"  # only if MuJoCo is here
