"""tile_sarsa's keyword arguments are validated like the tabular agents': names from its
signature, ranges, and fit to the environment (Box observations, discrete actions)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from nbtrain.config import TrainConfig


def error_text(**fields: Any) -> str:
    fields.setdefault("env_id", "MountainCar-v0")
    fields.setdefault("agent", "tile_sarsa")
    fields.setdefault("episodes", 1)
    with pytest.raises(ValidationError) as info:
        TrainConfig(**fields)
    return str(info.value)


def test_valid_config_and_float_normalisation() -> None:
    config = TrainConfig(
        env_id="MountainCar-v0",
        agent="tile_sarsa",
        agent_kwargs={"alpha": 1, "tilings": 4, "tiles": [6, 10], "hash_size": 512},
        episodes=1,
    )
    (worker,) = config.worker_configs()
    assert worker.agent_kwargs == {"alpha": 1.0, "tilings": 4, "tiles": [6, 10], "hash_size": 512}
    assert worker.agent.name == "tile_sarsa"
    assert config.name == "MountainCar-v0-tile_sarsa"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"bins": 4}, "tile_sarsa does not take 'bins'"),
        ({"tiling": 4}, "did you mean 'tilings'?"),
        ({"alpha": 0}, "alpha=0.0 is out of range; need 0.0 < alpha <= 1.0"),
        ({"epsilon": 0.1, "epsilon_min": 0.2}, "epsilon_min (0.2) must not exceed epsilon (0.1)"),
        ({"epsilon_min": 0.1}, "epsilon_min (0.1) must not exceed epsilon (0.0, its default)"),
        ({"tilings": 0}, "tilings=0; need an integer >= 1"),
        ({"hash_size": 2.5}, "hash_size=2.5; need an integer >= 1"),
        ({"tiles": [4]}, "tiles=[4] must be an int or a list of 2 ints"),
        ({"tiles": "8"}, "tiles='8'; need an integer >= 1"),
        ({"tilings": 2000}, "tilings=2000 must be an integer in [1, 1024]"),
        ({"bounds": [[0, 1], [1, 0]]}, "bounds="),
    ],
)
def test_bad_kwargs_are_named(kwargs: dict[str, Any], expected: str) -> None:
    assert expected in error_text(agent_kwargs=kwargs)


def test_env_fit() -> None:
    assert "tile_sarsa needs a Box observation space" in error_text(env_id="FrozenLake-v1")
    assert "needs a discrete action space" in error_text(env_id="MountainCarContinuous-v0")
    text = error_text(env_id="CartPole-v1")
    assert "observation dimension(s) 1 [-inf, inf], 3 [-inf, inf]" in text
    TrainConfig(
        env_id="CartPole-v1",
        agent="tile_sarsa",
        agent_kwargs={"bounds": [None, [-3, 3], None, [-3.5, 3.5]], "epsilon": 0.1},
        episodes=1,
    )
