"""Tabular Q-learning, SARSA and Expected SARSA with ε-greedy exploration.

The hyperparameters and their defaults are the keyword-only parameters of
:class:`TabularAgent` (its docstring shows them as a table rendered from the signature, and
the form and config validation read the same signature through ``nbtrain.agents.params``).

The default ε schedule suits a newcomer's first grid world: ε starts at 1.0 and decays by
a factor 0.99 after each episode to a floor of 0.05, so early episodes explore and later ones
exploit. The textbook's constant ε (Sutton & Barto's ε = 0.1 on the cliff) is
``epsilon=0.1, epsilon_decay=1.0``.

Speed matters (a step should cost microseconds): the table is a list of Python float lists,
randomness comes from a seeded ``random.Random`` (ε-greedy and uniform tie-breaking), and
the state of the observation last passed to ``learn`` is reused by the next ``act``.

Terminal transitions (``terminated``) do not bootstrap; time-limit truncations do.

Persistence: ``save`` writes the table, ε, the observation discretization (bins and bounds)
and the episode count atomically as JSON; ``load`` takes only the table (the configured ε
schedule stays: a policy file never overrides the config); ``restore`` takes the whole
learning state, ε included, to resume after a crash (:mod:`nbtrain.agents.tabular_policy`).
"""

from __future__ import annotations

import math
import numbers
import random
from typing import Any, ClassVar

from gymnasium import spaces

from nbtrain.agents.discretize import MAX_TABLE_CELLS, DiscreteEncoder, make_discretizer
from nbtrain.agents.params import check_number, document_params
from nbtrain.agents.tabular_policy import TabularPolicyFile

_NO_OBS = object()  # sentinel: no cached observation


@document_params
class TabularAgent(TabularPolicyFile):
    """Shared table, exploration, ε schedule and persistence; subclasses define ``learn``.

    ε schedule: after each episode ε ← max(ε_min, ε·decay); ``epsilon_decay=1.0`` keeps ε
    constant, the textbook's behaviour (e.g. ``epsilon=0.1, epsilon_decay=1.0``).
    """

    algorithm: ClassVar[str] = ""
    PARAM_HELP: ClassVar[dict[str, str]] = {
        "alpha": "step size, 0 < alpha <= 1",
        "gamma": "discount, 0 <= gamma <= 1",
        "epsilon": "ε of the first episode (ε-greedy exploration), 0 <= epsilon <= 1",
        "epsilon_min": "floor of ε; must not exceed epsilon",
        "epsilon_decay": (
            "after each episode ε ← max(ε_min, ε·decay); 1.0 keeps ε constant (the textbook's)"
        ),
        "initial_q": "every Q-value's start (optimistic values push exploration)",
        "bins": "Box observations only: cells per dimension (int or one per dimension)",
        "bounds": "Box only: [[low, high] or None, ...] per dimension (None: the space's)",
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        seed: int | None = None,
        *,
        alpha: float = 0.1,
        gamma: float = 0.99,
        epsilon: float = 1.0,
        epsilon_min: float = 0.05,
        epsilon_decay: float = 0.99,
        initial_q: float = 0.0,
        bins: int | list[int] | None = None,
        bounds: list[list[float] | None] | None = None,
    ) -> None:
        name = self.algorithm
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(
                f"{name} needs a Discrete action space; got {action_space} "
                "(use the 'random' agent or your own for other action spaces)"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"{name}: seed={seed!r} must be an int or None")
        self.alpha = check_number("alpha", alpha, 0.0, 1.0, open_low=True)
        self.gamma = check_number("gamma", gamma, 0.0, 1.0)
        self.epsilon = check_number("epsilon", epsilon, 0.0, 1.0)
        self.epsilon_min = check_number("epsilon_min", epsilon_min, 0.0, 1.0)
        self.epsilon_decay = check_number("epsilon_decay", epsilon_decay, 0.0, 1.0, open_low=True)
        if self.epsilon_min > self.epsilon:
            raise ValueError(
                f"epsilon_min={epsilon_min!r} must not exceed epsilon={epsilon!r} "
                f"(pass epsilon_min={epsilon!r} or lower as well)"
            )
        q0 = check_number("initial_q", initial_q, -math.inf, math.inf)
        if math.isinf(q0):
            raise ValueError(f"initial_q={initial_q!r} must be a finite number")
        self.discretizer = make_discretizer(observation_space, bins, bounds)
        self.n_states = self.discretizer.n_states
        self.n_actions = int(action_space.n)
        self.action_start = int(action_space.start)
        if self.n_states * self.n_actions > MAX_TABLE_CELLS:
            raise ValueError(
                f"{name}: a table of {self.n_states} states x {self.n_actions} actions is too "
                f"large (limit {MAX_TABLE_CELLS} cells); use fewer bins"
            )
        self.q: list[list[float]] = [[q0] * self.n_actions for _ in range(self.n_states)]
        self.seed = None if seed is None else int(seed)
        self._rng = random.Random(self.seed)
        self._random = self._rng.random
        disc = self.discretizer
        self._encode = disc.fast_encode if isinstance(disc, DiscreteEncoder) else disc.encode
        self._cached_obs: object = _NO_OBS
        self._cached_state = 0

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(states={self.n_states}, actions={self.n_actions}, "
            f"alpha={self.alpha}, gamma={self.gamma}, epsilon={self.epsilon:.4g})"
        )

    # -- acting -------------------------------------------------------------------------

    def _greedy(self, row: list[float]) -> int:
        best = max(row)
        if row.count(best) == 1:
            return row.index(best)
        ties = [i for i, v in enumerate(row) if v == best]
        return ties[int(self._random() * len(ties))]

    def _policy(self, row: list[float]) -> int:
        """ε-greedy index into ``row`` (exploration draws uniformly over all actions)."""
        if self._random() < self.epsilon:
            return int(self._random() * self.n_actions)
        return self._greedy(row)

    def act(self, obs: Any, explore: bool = True) -> int:
        """ε-greedy while exploring, else greedy; ties broken uniformly at random.

        ``_policy`` and ``_greedy`` written out inline (the same draws in the same order):
        three calls fewer per step took a quarter off this method's cost, and it runs at
        every step (benchmarks/vs_bare.py)."""
        row = self.q[self._cached_state if obs is self._cached_obs else self._encode(obs)]
        rand = self._random
        if explore and rand() < self.epsilon:
            return int(rand() * self.n_actions) + self.action_start
        best = max(row)
        if row.count(best) == 1:
            return row.index(best) + self.action_start
        ties = [i for i, v in enumerate(row) if v == best]
        return ties[int(rand() * len(ties))] + self.action_start

    def q_values(self, obs: Any) -> list[float]:
        """A copy of the Q-values of ``obs``'s state (index 0 is ``action_space.start``)."""
        return list(self.q[self._encode(obs)])

    def learn(
        self,
        obs: Any,
        action: Any,
        reward: float,
        next_obs: Any,
        terminated: bool,
        truncated: bool,
    ) -> dict[str, Any] | None:
        raise NotImplementedError

    def end_episode(self) -> dict[str, Any]:
        """Decay ε once per episode: ε ← max(ε_min, ε·decay)."""
        self.epsilon = max(self.epsilon_min, self.epsilon * self.epsilon_decay)
        self._forget()
        return {"epsilon": self.epsilon}

    def _forget(self) -> None:
        self._cached_obs = _NO_OBS


class QLearningAgent(TabularAgent):
    """Off-policy TD control: the target takes the best next action, whatever is played."""

    algorithm = "q_learning"

    def learn(
        self,
        obs: Any,
        action: Any,
        reward: float,
        next_obs: Any,
        terminated: bool,
        truncated: bool,
    ) -> dict[str, Any]:
        q = self.q
        row = q[self._cached_state if obs is self._cached_obs else self._encode(obs)]
        a = int(action) - self.action_start
        old = row[a]
        if terminated:
            delta = float(reward) - old
            self._cached_obs = _NO_OBS
        else:
            s2 = self._encode(next_obs)
            delta = float(reward) + self.gamma * max(q[s2]) - old
            if truncated:
                self._cached_obs = _NO_OBS
            else:
                self._cached_obs = next_obs
                self._cached_state = s2
        row[a] = old + self.alpha * delta
        return {"epsilon": self.epsilon, "td_error": delta}


class ExpectedSarsaAgent(TabularAgent):
    """The target averages the next Q-values under the current ε-greedy policy."""

    algorithm = "expected_sarsa"

    def learn(
        self,
        obs: Any,
        action: Any,
        reward: float,
        next_obs: Any,
        terminated: bool,
        truncated: bool,
    ) -> dict[str, Any]:
        row = self.q[self._cached_state if obs is self._cached_obs else self._encode(obs)]
        a = int(action) - self.action_start
        old = row[a]
        eps = self.epsilon
        if terminated:
            target = float(reward)
        else:
            s2 = self._encode(next_obs)
            row2 = self.q[s2]
            # Greedy ties share (1-ε) but all have the max value, so the sum is (1-ε)·max.
            expected = eps * sum(row2) / self.n_actions + (1.0 - eps) * max(row2)
            target = float(reward) + self.gamma * expected
        if terminated or truncated:
            self._cached_obs = _NO_OBS
        else:
            self._cached_obs, self._cached_state = next_obs, s2
        delta = target - old
        row[a] = old + self.alpha * delta
        return {"epsilon": eps, "td_error": delta}


class SarsaAgent(TabularAgent):
    """On-policy TD control: learns from the action it will actually take next.

    ``learn`` draws the next action A' (ε-greedy on the next state) for its target and keeps
    it; the following ``act(next_obs)`` returns that same A', so behaviour and target agree.
    """

    algorithm = "sarsa"

    _pending_action: int | None = None  # A' chosen by the last learn (per instance once set)

    def act(self, obs: Any, explore: bool = True) -> int:
        pending = self._pending_action
        if explore and pending is not None:
            self._pending_action = None
            if obs is self._cached_obs or self._encode(obs) == self._cached_state:
                return pending
        return super().act(obs, explore)

    def learn(
        self,
        obs: Any,
        action: Any,
        reward: float,
        next_obs: Any,
        terminated: bool,
        truncated: bool,
    ) -> dict[str, Any]:
        row = self.q[self._cached_state if obs is self._cached_obs else self._encode(obs)]
        a = int(action) - self.action_start
        old = row[a]
        if terminated:
            target = float(reward)
            self._pending_action = None
            self._cached_obs = _NO_OBS
        else:
            s2 = self._encode(next_obs)
            row2 = self.q[s2]
            a2 = self._policy(row2)
            target = float(reward) + self.gamma * row2[a2]
            if truncated:  # bootstrap, but the episode is over: nothing to carry over
                self._pending_action = None
                self._cached_obs = _NO_OBS
            else:
                self._pending_action = a2 + self.action_start
                self._cached_obs, self._cached_state = next_obs, s2
        delta = target - old
        row[a] = old + self.alpha * delta
        return {"epsilon": self.epsilon, "td_error": delta}

    def _forget(self) -> None:
        super()._forget()
        self._pending_action = None
