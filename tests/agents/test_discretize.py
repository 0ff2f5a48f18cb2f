"""Observation spaces → table rows: exact for discrete spaces, equal-width bins for Box."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

from nbtrain.agents.discretize import make_discretizer
from nbtrain.agents.tabular import QLearningAgent


def test_discrete_with_start():
    d = make_discretizer(spaces.Discrete(5, start=-2))
    assert d.n_states == 5
    assert [d.encode(x) for x in range(-2, 3)] == [0, 1, 2, 3, 4]
    assert d.encode(np.int64(2)) == 4
    assert d.config == {"kind": "discrete", "n": 5, "start": -2}


@pytest.mark.parametrize(
    "space",
    [
        spaces.MultiDiscrete([3, 4, 2]),
        spaces.MultiDiscrete([2, 3], start=[1, -1]),
        spaces.MultiBinary(4),
        spaces.Tuple((spaces.Discrete(4), spaces.Discrete(3, start=1), spaces.Discrete(2))),
    ],
    ids=["multi_discrete", "multi_discrete_start", "multi_binary", "tuple"],
)
def test_discrete_like_spaces_are_a_bijection(space):
    d = make_discretizer(space)
    space.seed(0)
    seen = {}
    for _ in range(600):
        obs = space.sample()
        state = d.encode(obs)
        assert 0 <= state < d.n_states
        key = tuple(np.asarray(obs).ravel().tolist()) if not isinstance(obs, tuple) else obs
        assert seen.setdefault(state, key) == key  # one state per observation
    assert len(seen) == d.n_states  # every state reachable


def test_blackjack_tuple_observation(train):
    env = gym.make("Blackjack-v1")
    agent = QLearningAgent(env.observation_space, env.action_space, seed=0)
    assert agent.n_states == 32 * 11 * 2
    train(env, agent, 50, seed=0)
    assert any(v != 0.0 for row in agent.q for v in row)


def test_box_bins_and_clipping():
    d = make_discretizer(spaces.Box(-1.0, 1.0, (2,)), bins=[4, 2])
    assert d.n_states == 8
    assert d.encode(np.array([-1.0, -1.0])) == 0
    assert d.encode(np.array([-0.51, 0.0])) == 0 * 2 + 1
    assert d.encode(np.array([-0.5, 0.99])) == 1 * 2 + 1
    assert d.encode(np.array([0.999, -0.2])) == 3 * 2 + 0
    assert d.encode(np.array([1.0, 1.0])) == 7  # the upper edge belongs to the last bin
    assert d.encode(np.array([-50.0, 50.0])) == 0 * 2 + 1  # clipped
    assert d.encode([5.0, -5.0]) == 3 * 2 + 0  # plain lists work too


@given(
    x=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=4, max_size=4),
    bins=st.lists(st.integers(1, 7), min_size=4, max_size=4),
)
@settings(max_examples=200, deadline=None)
def test_box_states_in_range_and_monotone(x, bins):
    space = gym.make("CartPole-v1").observation_space
    bounds = [None, [-3.0, 3.0], None, [-2.0, 2.0]]
    d = make_discretizer(space, bins=bins, bounds=bounds)
    obs = np.array(x, dtype=np.float32)
    state = d.encode(obs)
    assert 0 <= state < d.n_states == math.prod(bins)
    bigger = obs.copy()
    bigger[0] = np.float32(x[0] + 1.0)
    assert d.encode(bigger) >= state  # increasing a coordinate never lowers its bin


def test_box_matrix_observation_is_flattened():
    d = make_discretizer(spaces.Box(0.0, 1.0, (2, 2)), bins=2)
    assert d.n_states == 16
    assert d.encode(np.array([[0.9, 0.1], [0.1, 0.9]])) == 0b1001


def test_bounds_tighten_finite_box_bounds():
    d = make_discretizer(spaces.Box(-10.0, 10.0, (1,)), bins=2, bounds=[[-1, 1]])
    assert d.encode(np.array([-0.5])) == 0
    assert d.encode(np.array([0.5])) == 1
    assert d.config["bounds"] == [[-1.0, 1.0]]


def test_single_bin_dimension_needs_no_bounds():
    space = spaces.Box(np.array([-np.inf, 0.0]), np.array([np.inf, 1.0]), dtype=np.float64)
    d = make_discretizer(space, bins=[1, 3])
    assert d.n_states == 3
    assert d.encode(np.array([1e30, 0.5])) == 1


def test_missing_bins_for_box_is_a_clear_error():
    space = gym.make("CartPole-v1").observation_space
    with pytest.raises(
        ValueError, match=r"continuous; pass bins=<int or one int per dimension \(4\)>"
    ):
        QLearningAgent(space, spaces.Discrete(2), seed=0)


def test_infinite_bound_without_bounds_names_the_dimension():
    space = gym.make("CartPole-v1").observation_space
    # every infinite dimension at once (it named one per attempt: 1, then 3)
    with pytest.raises(ValueError, match=r"dimension\(s\) 1 \[-inf, inf\], 3 \[-inf, inf\] of"):
        make_discretizer(space, bins=4)
    with pytest.raises(
        ValueError, match=r"dimension\(s\) 3 \[-inf, inf\] of .* for dimension\(s\) \[3\]"
    ):
        make_discretizer(space, bins=4, bounds=[None, [-1, 1], None, None])


@pytest.mark.parametrize(
    ("bins", "bounds", "match"),
    [
        (0, None, "every bin count must be an int >= 1, got 0"),
        ([2, 2], None, r"list of 3 ints"),
        ("4", None, "bins='4'"),
        ([2, 2.5, 2], None, "got 2.5"),
        ([2, True, 2], None, "got True"),
        (2, [[0, 1]], "list of 3 \\[low, high\\] pairs"),
        (2, "abc", "list of 3"),
        (2, [[0, 1], [1, 0], None], r"dimension 1 must be \[low, high\] with finite low < high"),
        (2, [[0, 1], [0, math.inf], None], "dimension 1"),
        (2, [[0, 1], [0, 1, 2], None], "dimension 1"),
        (2, [[0, 1], ["a", "b"], None], "dimension 1"),
    ],
)
def test_bad_bins_and_bounds(bins, bounds, match):
    with pytest.raises(ValueError, match=match):
        make_discretizer(spaces.Box(-1.0, 1.0, (3,)), bins=bins, bounds=bounds)


def test_numpy_bins_are_accepted():
    d = make_discretizer(spaces.Box(-1.0, 1.0, (2,)), bins=np.int64(3))
    assert d.n_states == 9


@pytest.mark.parametrize("key", ["bins", "bounds"])
def test_bins_or_bounds_for_discrete_obs_is_an_error(key):
    with pytest.raises(ValueError, match=f"{key}=.* only applies to Box"):
        make_discretizer(spaces.Discrete(4), **{key: [[0, 1]] if key == "bounds" else 4})


def test_unsupported_space():
    with pytest.raises(TypeError, match="cannot use the observation space Tuple"):
        make_discretizer(spaces.Tuple((spaces.Discrete(2), spaces.Box(0, 1, (1,)))))


def test_infinite_observations_go_to_the_edge_cells_and_nan_is_named() -> None:
    """Regression (worker audit): +-inf raised OverflowError (the docstring promises a clip
    into the edge cells), NaN a ValueError naming neither the observation nor its source."""
    space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float64)
    disc = make_discretizer(space, bins=4)
    assert disc.encode(np.array([math.inf, 0.0])) == disc.encode(np.array([5.0, 0.0])) == 14
    assert disc.encode(np.array([-math.inf, -math.inf])) == 0
    with pytest.raises(ValueError, match=r"is NaN in dimension\(s\) \[1\]"):
        disc.encode(np.array([0.0, math.nan]))
