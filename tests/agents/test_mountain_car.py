"""Sutton & Barto's Figure 10.2 shape with tile_sarsa, end to end: MountainCar-v0 with the
time limit lifted, alpha = 0.5/8, ε = 0, 4 workers through ``nbtrain.launch``. About 5 s."""

from __future__ import annotations

from pathlib import Path

import pytest

import nbtrain

pytestmark = pytest.mark.slow


def test_tile_sarsa_reproduces_figure_10_2_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = nbtrain.TrainConfig(
        env_id="MountainCar-v0",
        agent="tile_sarsa",
        agent_kwargs={"alpha": 0.5 / 8, "epsilon": 0.0, "tilings": 8, "tiles": 8},
        episodes=200,
        max_steps_per_episode=10_000,
        workers=4,
        seed=0,
        telemetry={"steps": "none"},
    )
    run = nbtrain.launch(config, db=tmp_path / "car.sqlite")
    assert set(run.wait(timeout=600).values()) == {"completed"}
    steps = run.aggregate(metric="length")["mean"]  # mean over the 4 workers, per episode
    assert len(steps) == 200
    assert steps.iloc[0] > 700  # the first episode wanders for about a thousand steps
    assert steps.iloc[:10].min() > 250  # several hundred steps per episode at first
    assert steps.iloc[:10].mean() > 400
    assert steps.iloc[150:200].mean() < 200  # and then under 200, as in the book
    episodes = run.episodes()
    assert (episodes["length"] < 10_000).all()  # every episode reaches the goal
    assert episodes["terminated"].all()
