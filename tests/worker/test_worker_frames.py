"""Grid layouts of the toy-text envs and rendered frames (real Gymnasium envs)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from nbtrain.worker.frames import MAX_FRAME_SIDE, FrameMaker, grid_layout, rgb_bytes

RUN = "01J00000000000000000000000"


def test_grid_layouts() -> None:
    lake = gym.make("FrozenLake-v1", map_name="8x8")
    kind, rows = grid_layout(lake) or ("", [])
    assert (kind, len(rows), rows[0], rows[-1]) == ("frozenlake", 8, "SFFFFFFF", "FFFHFFFG")
    taxi = grid_layout(gym.make("Taxi-v4"))
    assert taxi is not None
    assert taxi[0] == "taxi"
    assert taxi[1][1] == "|R: | : :G|"
    cliff = grid_layout(gym.make("CliffWalking-v1"))
    assert cliff == ("cliffwalking", ["." * 12] * 3 + ["SCCCCCCCCCCG"])
    assert grid_layout(gym.make("CartPole-v1")) is None


def test_rgb_frames_are_subsampled() -> None:
    data, shape = rgb_bytes(np.zeros((1000, 500, 4), dtype=np.uint8))
    assert shape == [250, 125, 3]  # every 4th pixel: the longest side fits
    assert max(shape) <= MAX_FRAME_SIDE
    assert len(data) == 250 * 125 * 3
    small = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert rgb_bytes(small) == (small.tobytes(), [2, 3, 3])
    with pytest.raises(ValueError, match=r"shape \(4, 4\); expected \(h, w, 3\)"):
        rgb_bytes(np.zeros((4, 4)))


def test_frame_maker_caps_the_rate() -> None:
    env = gym.make("FrozenLake-v1", render_mode="ansi")
    env.reset(seed=0)
    maker = FrameMaker(env, "ansi", RUN, "000001")
    first = maker.frame(0, 0)
    assert first is not None
    assert first.text is not None
    assert "F" in first.text
    assert maker.frame(0, 1) is None  # within 1/30 s of the last one
    assert maker.frame(0, 2, force=True) is not None
