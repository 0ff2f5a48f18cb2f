"""A training loop identical in call order to the worker's, for agent tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import pytest

TrainFn = Callable[..., list[float]]
GreedyFn = Callable[..., float]


def _train(
    env: gym.Env[Any, Any],
    agent: Any,
    episodes: int,
    seed: int = 0,
    actions: list[Any] | None = None,
) -> list[float]:
    """``act → step → learn → obs = next_obs``, ``end_episode`` after each episode."""
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed * 100_003 + ep)
        total = 0.0
        while True:
            action = agent.act(obs)
            if actions is not None:
                actions.append(action)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            agent.learn(obs, action, reward, next_obs, terminated, truncated)
            total += float(reward)
            obs = next_obs
            if terminated or truncated:
                break
        if hasattr(agent, "end_episode"):
            agent.end_episode()
        returns.append(total)
    return returns


def _greedy_return(env: gym.Env[Any, Any], agent: Any, seed: int = 0) -> float:
    obs, _ = env.reset(seed=seed)
    total = 0.0
    while True:
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs, explore=False))
        total += float(reward)
        if terminated or truncated:
            return total


@pytest.fixture
def train() -> TrainFn:
    return _train


@pytest.fixture
def greedy_return() -> GreedyFn:
    return _greedy_return
