"""Policy files: their bytes (msgspec's JSON where it is exact, ``json.dumps`` where a value is
not finite: msgspec would write ``null`` and lose it), and the checks the agents share."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbtrain.agents.policyfile import PolicyFileError, policy_json, resume_point, tabular_algorithm
from nbtrain.agents.tabular import QLearningAgent

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (the value a diverged Q-table holds)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(st.dictionaries(st.text(max_size=6), values, max_size=5))
def test_every_value_reads_back_as_it_was(data: dict[str, Any]) -> None:
    out = policy_json(data)
    assert same(json.loads(out), data)


def test_finite_policies_take_the_fast_encoder_and_match_json_dumps() -> None:
    data = {"format": "f", "episode": 3, "q": [[0.1, 1e-05, 2.5e16], [0.0, -0.0, 5e-324]]}
    out = policy_json(data)
    assert b"1e-5" in out or b"0.00001" in out  # msgspec's spelling, not json.dumps' "1e-05"
    assert json.loads(out) == data
    assert b", " not in out
    assert b": " not in out


def test_a_diverged_q_table_keeps_nan_and_infinity(tmp_path: Path) -> None:
    env = gym.make("FrozenLake-v1", is_slippery=False)
    agent = QLearningAgent(env.observation_space, env.action_space, seed=0)
    agent.q[3][1] = math.nan
    agent.q[4][2] = math.inf
    agent.q[5][0] = -math.inf
    path = tmp_path / "policy.json"
    agent.save(path, episode=7)
    text = path.read_text()
    assert "NaN" in text
    assert "-Infinity" in text
    loaded = json.loads(text)
    assert math.isnan(loaded["q"][3][1])
    assert loaded["q"][4][2] == math.inf
    assert loaded["q"][5][0] == -math.inf
    assert loaded["episode"] == 7


def test_resume_point_checks_epsilon_and_reads_the_episode() -> None:
    """Both agent families restore through it: a file without ε keeps the agent's, and an
    episode count that is not an int (a bool, a float) is no resume point."""
    assert resume_point({"epsilon": 0.25, "episode": 7}, 0.9) == (0.25, 7)
    assert resume_point({}, 0.9) == (0.9, None)
    assert resume_point({"epsilon": 0, "episode": True}, 0.9) == (0.0, None)
    assert resume_point({"episode": 3.0}, 0.5) == (0.5, None)
    for bad in (1.5, -0.1, "0.1", None, math.nan):
        with pytest.raises(ValueError, match="epsilon="):
            resume_point({"epsilon": bad}, 0.5)


def test_tabular_algorithm_names_the_allowed_ones(tmp_path: Path) -> None:
    assert tabular_algorithm({"algorithm": "sarsa"}, tmp_path / "p.json") == "sarsa"
    for bad in ({"algorithm": "dqn"}, {}, {"algorithm": ["q_learning"]}):
        with pytest.raises(PolicyFileError, match="allowed: q_learning, sarsa, expected_sarsa"):
            tabular_algorithm(bad, tmp_path / "p.json")
