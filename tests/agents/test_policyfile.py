"""Policy files' bytes: msgspec's JSON where it is exact, ``json.dumps`` where a value is
not finite (msgspec would write ``null`` and lose it)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
from hypothesis import given
from hypothesis import strategies as st

from nbtrain.agents.policyfile import policy_json
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
