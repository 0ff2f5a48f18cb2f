"""The random baseline agent."""

from __future__ import annotations

from collections import Counter

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from nbtrain.agents import Agent
from nbtrain.agents.random_agent import RandomAgent


def test_discrete_uniform_with_start():
    agent = RandomAgent(spaces.Discrete(3), spaces.Discrete(3, start=-1), seed=4)
    n = 6000
    counts = Counter(agent.act(0) for _ in range(n))
    assert set(counts) == {-1, 0, 1}
    chi2 = sum((c - n / 3) ** 2 / (n / 3) for c in counts.values())
    assert chi2 < 13.8  # 2 dof, P = 0.001
    assert all(type(a) is int for a in counts)


def test_box_action_space_real_env(train):
    env = gym.make("Pendulum-v1")
    agent = RandomAgent(env.observation_space, env.action_space, seed=1)
    assert isinstance(agent, Agent)
    actions: list[np.ndarray] = []
    returns = train(env, agent, 2, seed=0, actions=actions)
    assert len(actions) == 400  # Pendulum's 200-step limit, twice
    assert all(env.action_space.contains(a) for a in actions)
    assert all(r < 0 for r in returns)
    assert agent.learn(0, actions[0], 0.0, 0, False, False) is None
    assert agent.end_episode() is None


@pytest.mark.parametrize(
    "space", [spaces.Discrete(5), spaces.Box(-2.0, 2.0, (3,)), spaces.MultiBinary(4)]
)
def test_same_seed_same_actions(space):
    def seq(seed):
        agent = RandomAgent(spaces.Discrete(1), space, seed=seed)
        return [np.asarray(agent.act(0)).tolist() for _ in range(50)]

    assert seq(7) == seq(7)
    assert seq(7) != seq(8)


def test_env_action_space_rng_untouched():
    env = gym.make("Pendulum-v1")
    env.action_space.seed(123)
    expected = env.action_space.sample()
    env.action_space.seed(123)
    agent = RandomAgent(env.observation_space, env.action_space, seed=0)
    agent.act(None)
    assert np.array_equal(env.action_space.sample(), expected)


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"seed=1\.5"):
        RandomAgent(spaces.Discrete(2), spaces.Discrete(2), seed=1.5)
    with pytest.raises(TypeError, match="must be a gymnasium Space"):
        RandomAgent(spaces.Discrete(2), 3, seed=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'alpha'"):
        RandomAgent(spaces.Discrete(2), spaces.Discrete(2), seed=0, alpha=0.1)
