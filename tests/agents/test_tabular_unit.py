"""Exact behaviour of the tabular agents: updates, ε schedule, ties, determinism, SARSA order."""

from __future__ import annotations

import math
from collections import Counter

import gymnasium as gym
import pytest
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

from nbtrain.agents import Agent
from nbtrain.agents.tabular import (
    ExpectedSarsaAgent,
    QLearningAgent,
    SarsaAgent,
)

ALGORITHMS = [QLearningAgent, SarsaAgent, ExpectedSarsaAgent]
OBS = spaces.Discrete(6)
ACT = spaces.Discrete(4)


def make(cls, **kwargs):
    return cls(OBS, ACT, seed=kwargs.pop("seed", 0), **kwargs)


@pytest.mark.parametrize("cls", ALGORITHMS, ids=lambda c: c.algorithm)
def test_is_an_agent_with_optional_methods(cls):
    agent = make(cls)
    assert isinstance(agent, Agent)
    for name in ("end_episode", "save", "load"):
        assert callable(getattr(agent, name))


@pytest.mark.parametrize("cls", ALGORITHMS, ids=lambda c: c.algorithm)
def test_epsilon_decay_rule_is_exact(cls):
    agent = make(cls, epsilon=0.9, epsilon_min=0.3, epsilon_decay=0.8)
    expected = 0.9
    for _ in range(10):
        extras = agent.learn(0, 1, 0.0, 2, False, False)
        assert extras["epsilon"] == expected  # learn reports the ε in force
        expected = max(0.3, expected * 0.8)
        assert agent.end_episode() == {"epsilon": expected}
        assert agent.epsilon == expected
    assert expected == 0.3


def test_epsilon_decay_one_keeps_epsilon_fixed():
    agent = make(QLearningAgent, epsilon=0.1, epsilon_decay=1.0)
    for _ in range(100):
        agent.end_episode()
    assert agent.epsilon == 0.1


@pytest.mark.parametrize("cls", ALGORITHMS, ids=lambda c: c.algorithm)
def test_terminated_does_not_bootstrap_truncated_does(cls):
    for terminated, truncated, want in [(True, False, 1.0), (False, True, 6.0), (True, True, 1.0)]:
        agent = make(cls, alpha=1.0, gamma=1.0, epsilon=0.0, epsilon_min=0.0)
        agent.q[3] = [5.0, 5.0, 5.0, 5.0]
        extras = agent.learn(2, 1, 1.0, 3, terminated, truncated)
        assert agent.q[2][1] == want
        assert extras == {"epsilon": 0.0, "td_error": want}


def test_q_learning_update_uses_max():
    agent = make(QLearningAgent, alpha=0.5, gamma=0.9)
    agent.q[0][2] = 1.0
    agent.q[4] = [0.0, 3.0, -1.0, 2.0]
    extras = agent.learn(0, 2, 0.5, 4, False, False)
    delta = 0.5 + 0.9 * 3.0 - 1.0
    assert extras["td_error"] == pytest.approx(delta)
    assert agent.q[0][2] == pytest.approx(1.0 + 0.5 * delta)


def test_expected_sarsa_target_is_policy_expectation():
    agent = make(ExpectedSarsaAgent, alpha=1.0, gamma=1.0, epsilon=0.2, epsilon_min=0.0)
    agent.q[4] = [1.0, 2.0, 3.0, 4.0]
    agent.learn(0, 0, 0.0, 4, False, False)
    assert agent.q[0][0] == pytest.approx(0.2 * 2.5 + 0.8 * 4.0)


@given(
    values=st.lists(st.floats(-10, 10), min_size=4, max_size=4),
    epsilon=st.sampled_from([0.0, 0.3, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=200, deadline=None)
def test_sarsa_acts_the_action_it_learned_from(values, epsilon, seed):
    """alpha=1, gamma=1, reward 0: Q(s,a) becomes exactly Q(s',a'), and the next act(s')
    must return that same a' (on-policy), whatever ε chose."""
    agent = SarsaAgent(OBS, ACT, seed=seed, alpha=1.0, gamma=1.0, epsilon=epsilon, epsilon_min=0)
    agent.q[5] = list(values)
    agent.learn(1, 0, 0.0, 5, False, False)
    next_action = agent.act(5)
    assert agent.q[1][0] == values[next_action]


def test_sarsa_pending_action_is_used_once_and_only_for_its_state():
    agent = make(SarsaAgent, epsilon=1.0)
    agent.learn(0, 0, 0.0, 3, False, False)
    pending = agent._pending_action
    assert agent.act(3) == pending
    assert agent._pending_action is None
    agent.learn(3, pending, 0.0, 4, False, False)
    agent.act(2)  # a different observation: fresh choice, pending dropped
    assert agent._pending_action is None
    for terminated, truncated in [(True, False), (False, True)]:
        agent.learn(0, 0, 0.0, 3, terminated, truncated)  # episode over: nothing carried
        assert agent._pending_action is None
    agent.learn(0, 0, 0.0, 3, False, False)
    agent.end_episode()
    assert agent._pending_action is None


def test_sarsa_greedy_act_ignores_pending():
    agent = make(SarsaAgent, epsilon=1.0)
    agent.q[3] = [0.0, 0.0, 9.0, 0.0]
    for _ in range(20):
        agent.learn(0, 0, 0.0, 3, False, False)
        assert agent.act(3, explore=False) == 2


@pytest.mark.parametrize("cls", ALGORITHMS, ids=lambda c: c.algorithm)
def test_greedy_ties_are_uniform(cls):
    agent = make(cls, seed=123)
    n = 8000
    counts = Counter(agent.act(0, explore=False) for _ in range(n))
    assert set(counts) == {0, 1, 2, 3}
    # chi-square, 3 degrees of freedom: P(X > 16.27) = 0.001
    chi2 = sum((c - n / 4) ** 2 / (n / 4) for c in counts.values())
    assert chi2 < 16.27


def test_greedy_ties_only_among_the_best():
    agent = make(QLearningAgent, seed=5)
    agent.q[0] = [1.0, 3.0, 3.0, -2.0]
    counts = Counter(agent.act(0, explore=False) for _ in range(2000))
    assert set(counts) == {1, 2}
    assert abs(counts[1] - counts[2]) < 200


@given(values=st.lists(st.integers(-3, 3).map(float), min_size=4, max_size=4), seed=st.integers())
def test_greedy_is_always_an_argmax(values, seed):
    agent = QLearningAgent(OBS, ACT, seed=seed)
    agent.q[2] = values
    assert values[agent.act(2, explore=False)] == max(values)


def test_exploration_rate_matches_epsilon():
    agent = make(QLearningAgent, epsilon=0.25, epsilon_min=0.0, seed=9)
    agent.q[0] = [0.0, 0.0, 1.0, 0.0]
    n = 8000
    non_greedy = sum(agent.act(0) != 2 for _ in range(n))
    # explorations draw uniformly over all 4 actions, so 3/4 of them are non-greedy
    assert abs(non_greedy / n - 0.25 * 0.75) < 0.02


def _actions(cls, seed, train):
    env = gym.make("FrozenLake-v1", is_slippery=False)
    agent = cls(env.observation_space, env.action_space, seed=seed)
    actions: list[int] = []
    train(env, agent, 30, seed=0, actions=actions)
    return actions, agent.q


@pytest.mark.parametrize("cls", ALGORITHMS, ids=lambda c: c.algorithm)
def test_same_seed_same_actions(cls, train):
    a1, q1 = _actions(cls, 11, train)
    a2, q2 = _actions(cls, 11, train)
    a3, _ = _actions(cls, 12, train)
    assert a1 == a2
    assert q1 == q2
    assert a1 != a3
    assert all(type(a) is int for a in a1)


def test_action_space_start_is_respected():
    agent = QLearningAgent(spaces.Discrete(3, start=5), spaces.Discrete(2, start=-1), seed=0)
    assert {agent.act(6) for _ in range(200)} == {-1, 0}
    agent.learn(6, -1, 1.0, 7, True, False)
    assert agent.q[1][0] == pytest.approx(0.1)
    assert agent.act(6, explore=False) == -1


def test_numpy_inputs_are_converted():
    np = pytest.importorskip("numpy")
    agent = make(QLearningAgent, alpha=1.0)
    agent.learn(np.int64(0), np.int64(1), np.float32(0.5), np.int64(2), np.bool_(True), False)
    assert type(agent.q[0][1]) is float
    assert agent.q[0][1] == 0.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 0}, r"alpha=0 .*\(0\.0, 1\.0\]"),
        ({"alpha": 1.5}, "alpha=1.5"),
        ({"alpha": "0.1"}, "alpha='0.1'"),
        ({"alpha": True}, "alpha=True"),
        ({"alpha": math.nan}, "alpha=nan"),
        ({"gamma": -0.1}, r"gamma=-0.1 .*\[0\.0, 1\.0\]"),
        ({"epsilon": 2}, "epsilon=2"),
        ({"epsilon_min": -1}, "epsilon_min=-1"),
        ({"epsilon_decay": 0}, "epsilon_decay=0"),
        ({"epsilon_decay": 1.01}, "epsilon_decay=1.01"),
        ({"epsilon": 0.01}, "epsilon_min=0.05 must not exceed epsilon=0.01"),
        ({"initial_q": math.inf}, "initial_q=inf"),
    ],
)
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(QLearningAgent, **kwargs)


def test_greedy_only_agent_is_allowed():
    agent = make(QLearningAgent, epsilon=0.0, epsilon_min=0.0)
    agent.end_episode()
    assert agent.epsilon == 0.0


def test_bad_spaces_and_seed():
    with pytest.raises(TypeError, match=r"Discrete action space; got Box"):
        QLearningAgent(OBS, spaces.Box(-1, 1, (1,)), seed=0)
    with pytest.raises(TypeError, match="observation space Dict"):
        QLearningAgent(spaces.Dict({"a": spaces.Discrete(2)}), ACT, seed=0)
    with pytest.raises(TypeError, match="seed='1'"):
        QLearningAgent(OBS, ACT, seed="1")
    with pytest.raises(ValueError, match="too large"):
        QLearningAgent(spaces.Box(0, 1, (8,)), ACT, seed=0, bins=10)
    with pytest.raises(TypeError, match="unexpected keyword argument 'alpah'"):
        QLearningAgent(OBS, ACT, seed=0, alpah=0.1)


def test_seed_none_is_allowed():
    agent = QLearningAgent(OBS, ACT, seed=None)
    assert agent.act(0) in range(4)


def test_repr_and_q_values():
    agent = make(ExpectedSarsaAgent)
    agent.q[1][3] = 2.0
    assert agent.q_values(1) == [0.0, 0.0, 0.0, 2.0]
    agent.q_values(1)[0] = 9.0  # a copy
    assert agent.q[1][0] == 0.0
    assert "ExpectedSarsaAgent(states=6, actions=4" in repr(agent)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=4, max_size=4), min_size=6, max_size=6
    ),
    st.floats(0.0, 1.0),
    st.integers(0, 2**32 - 1),
    st.integers(-3, 3),
)
def test_act_draws_exactly_as_the_policy_it_inlines(q, epsilon, seed, start):
    """act() writes out _policy/_greedy for speed; SARSA's target still uses them: the
    two must make the same choices from the same random stream, ties included."""
    space = spaces.Discrete(4, start=start)
    inline = QLearningAgent(OBS, space, seed=seed, epsilon=epsilon, epsilon_min=0.0)
    spelled = QLearningAgent(OBS, space, seed=seed, epsilon=epsilon, epsilon_min=0.0)
    inline.q = [list(row) for row in q]
    for step in range(40):
        state = step % 6
        explore = step % 3 != 0
        expected = spelled._policy(q[state]) if explore else spelled._greedy(q[state])
        assert inline.act(state, explore=explore) == expected + start
