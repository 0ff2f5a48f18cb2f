"""``success_rate`` means something per environment (issue 15): CliffWalking's returns are
all negative, yet an episode that reaches the goal is a success; where success is not
defined and no return was positive, it is NaN, not a misleading 0.0."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import nbtrain
from nbtrain.store.summary import env_name, success_definition

pytestmark = pytest.mark.slow


def test_cliff_walking_counts_reaching_the_goal(tmp_path: Path) -> None:
    config = nbtrain.TrainConfig(env_id="CliffWalking-v1", episodes=40, max_steps_per_episode=200)
    run = nbtrain.launch(config, db=tmp_path / "x.sqlite")
    run.wait(timeout=120)
    episodes = run.episodes()
    assert (episodes["total_reward"] < 0).all()  # the old rule gave 0.0 here
    reached = episodes["terminated"].mean()
    assert reached > 0
    assert run.summary()["success_rate"].iloc[0] == pytest.approx(reached)


def test_an_environment_without_a_definition_or_a_positive_return_gives_nan(
    tmp_path: Path,
) -> None:
    config = nbtrain.TrainConfig(env_id="Pendulum-v1", agent="random", episodes=2)
    run = nbtrain.launch(config, db=tmp_path / "x.sqlite")
    run.wait(timeout=120)
    assert (run.episodes()["total_reward"] < 0).all()
    assert math.isnan(run.summary()["success_rate"].iloc[0])


@pytest.mark.parametrize(
    ("env_id", "name"),
    [("FrozenLake-v1", "FrozenLake"), ("pkg.mod:CliffWalking-v1", "CliffWalking"), ("X", "X")],
)
def test_env_names_drop_module_and_version(env_id: str, name: str) -> None:
    assert env_name(env_id) == name


def test_definitions_are_said_in_words() -> None:
    assert success_definition("CliffWalking-v1").startswith("reached the goal")
    assert "time limit" in success_definition("CartPole-v1")
    assert "NaN when no episode" in success_definition("my.mod:Thing-v0")
