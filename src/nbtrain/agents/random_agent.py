"""Uniformly random actions: the baseline every learning curve is compared with."""

from __future__ import annotations

import copy
import numbers
import random
from typing import Any

from gymnasium import spaces


class RandomAgent:
    """Samples the action space with its own seeded generator and learns nothing.

    ``Discrete`` actions come from ``random.Random`` (fast, plain ints); any other space is
    sampled through a private copy of the space, seeded once, so the env's own
    ``action_space`` RNG is left alone.
    """

    algorithm = "random"

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        seed: int | None = None,
    ) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"random: seed={seed!r} must be an int or None")
        if not isinstance(action_space, spaces.Space):
            raise TypeError(f"random: action_space must be a gymnasium Space, got {action_space!r}")
        self.seed = None if seed is None else int(seed)
        self._space: spaces.Space[Any] | None = None
        if isinstance(action_space, spaces.Discrete):
            self._n = int(action_space.n)
            self._start = int(action_space.start)
            self._random = random.Random(self.seed).random
        else:
            self._space = copy.deepcopy(action_space)
            self._space.seed(self.seed)

    def act(self, obs: Any, explore: bool = True) -> Any:
        if self._space is None:
            return int(self._random() * self._n) + self._start
        return self._space.sample()

    def learn(
        self,
        obs: Any,
        action: Any,
        reward: float,
        next_obs: Any,
        terminated: bool,
        truncated: bool,
    ) -> None:
        return None

    def end_episode(self) -> None:
        return None
