"""The heartbeat's ε: read from the agent's last extras only when a heartbeat is sent."""

from __future__ import annotations

import pytest

from nbtrain.worker.heartbeat import LoopState


@pytest.mark.parametrize(
    ("end", "step", "expected"),
    [
        ({"epsilon": 0.25}, {"epsilon": 0.5}, 0.25),  # end_episode() wins
        (None, {"epsilon": 0.5, "td_error": 1.0}, 0.5),  # else the last learn()'s
        ({"other": 1}, {"epsilon": 1}, 1.0),  # ints become floats
        ({"epsilon": True}, None, None),  # a bool is not an ε
        ({"epsilon": "0.1"}, ["epsilon"], None),  # neither are strings or non-dicts
        (None, None, None),
    ],
)
def test_epsilon_comes_from_the_last_extras(end: object, step: object, expected: object) -> None:
    state = LoopState(0)
    assert state.epsilon is None
    state.extras = (end, step)
    assert state.epsilon == expected
