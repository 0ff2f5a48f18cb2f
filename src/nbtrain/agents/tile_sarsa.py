"""Linear semi-gradient SARSA with tile coding (Sutton & Barto, 2nd ed., §10.1).

``q(s, a) = Σ_t w[i_t(s), a]`` over the one active tile ``i_t(s)`` of each tiling; after
each step ``w[i_t(S), A] += alpha·δ`` for every tiling ``t``, with
``δ = R + gamma·q(S', A') - q(S, A)`` (``δ = R - q(S, A)`` at a terminal ``S'``) and ``A'`` the
ε-greedy action the agent then plays in ``S'``. ``alpha`` is the step size of one weight, as
in the book: with 8 tilings, ``alpha=0.5/8`` moves ``q`` half way to the target.

The defaults are the book's Mountain Car experiment (Figure 10.2): 8 tilings of 8 x 8 tiles,
alpha = 0.5/8, gamma = 1 and ε = 0 — the weights start at 0 while every reward is -1, so untried
actions look better than tried ones and the agent explores without ε ("optimism in the
face of uncertainty"). For tasks with positive rewards, set ``epsilon`` (e.g.
``epsilon=0.1``); the ε schedule is the tabular agents' (``epsilon_decay=1.0``: constant).
Time-limit truncations bootstrap; terminal transitions do not.
"""

from __future__ import annotations

import numbers
import os
import random
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from nbtrain.agents.atomic import write_atomic
from nbtrain.agents.discretize import MAX_TABLE_CELLS
from nbtrain.agents.params import check_number, document_params
from nbtrain.agents.policyfile import TILE_FORMAT, VERSION, policy_json, read_policy, resume_point
from nbtrain.agents.tilecoding import make_tile_coder

__all__ = ["TileSarsaAgent"]

_NO_OBS = object()


@document_params
class TileSarsaAgent:
    """Semi-gradient SARSA on tile-coded Box observations; discrete actions."""

    algorithm: ClassVar[str] = "tile_sarsa"
    PARAM_HELP: ClassVar[dict[str, str]] = {
        "alpha": "step size of one weight, 0 < alpha <= 1 (the book's 0.5/8 with 8 tilings)",
        "gamma": "discount, 0 <= gamma <= 1",
        "epsilon": "ε of the first episode (ε-greedy exploration), 0 <= epsilon <= 1",
        "epsilon_min": "floor of ε; must not exceed epsilon",
        "epsilon_decay": (
            "after each episode ε ← max(ε_min, ε·decay); 1.0 keeps ε constant (the textbook's)"
        ),
        "tilings": "number of offset tilings (1 to 1024)",
        "tiles": "tiles per dimension in each tiling (int or one per dimension)",
        "bounds": "[[low, high] or None, ...] per dimension (None: the observation space's)",
        "hash_size": "rows of the weight table; tiles beyond it are hashed into it",
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        seed: int | None = None,
        *,
        alpha: float = 0.5 / 8,
        gamma: float = 1.0,
        epsilon: float = 0.0,
        epsilon_min: float = 0.0,
        epsilon_decay: float = 1.0,
        tilings: int = 8,
        tiles: int | list[int] = 8,
        bounds: list[list[float] | None] | None = None,
        hash_size: int = 4096,
    ) -> None:
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(
                f"tile_sarsa needs a Discrete action space; got {action_space} "
                "(use the 'random' agent or your own for other action spaces)"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"tile_sarsa: seed={seed!r} must be an int or None")
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
        self.n_actions = int(action_space.n)
        self.action_start = int(action_space.start)
        self.coder = make_tile_coder(
            observation_space,
            tilings=tilings,
            tiles=tiles,
            bounds=bounds,
            hash_size=hash_size,
            max_rows=max(1, MAX_TABLE_CELLS // self.n_actions),
        )
        self.w = np.zeros((self.coder.hash_size, self.n_actions))
        self.seed = None if seed is None else int(seed)
        self._random = random.Random(self.seed).random
        self._indexes = self.coder.indexes
        self._add = np.add.at if self.coder.hashed else None  # hashed rows may repeat
        self._cached_obs: object = _NO_OBS
        self._cached_rows: Any = None
        self._pending_action: int | None = None

    def __repr__(self) -> str:
        c = self.coder
        return (
            f"TileSarsaAgent(tilings={c.tilings}, tiles={c.tiles}, hash_size={c.hash_size}, "
            f"actions={self.n_actions}, alpha={self.alpha}, epsilon={self.epsilon:.4g})"
        )

    # -- acting -------------------------------------------------------------------------

    def _rows(self, obs: Any) -> Any:
        return self._cached_rows if obs is self._cached_obs else self._indexes(obs)

    def _greedy(self, q: list[float]) -> int:
        best = max(q)
        if q.count(best) == 1:
            return q.index(best)
        ties = [i for i, v in enumerate(q) if v == best]
        return ties[int(self._random() * len(ties))]

    def _policy(self, q: list[float]) -> int:
        if self._random() < self.epsilon:
            return int(self._random() * self.n_actions)
        return self._greedy(q)

    def q_values(self, obs: Any) -> list[float]:
        """``q(obs, a)`` for every action (index 0 is ``action_space.start``)."""
        values: list[float] = self.w[self._indexes(obs)].sum(axis=0).tolist()
        return values

    def act(self, obs: Any, explore: bool = True) -> int:
        """ε-greedy while exploring (the A' chosen by the last ``learn``), else greedy."""
        pending = self._pending_action
        if explore and pending is not None:
            self._pending_action = None
            if obs is self._cached_obs:
                return pending
        q = self.w[self._rows(obs)].sum(axis=0).tolist()
        return (self._policy(q) if explore else self._greedy(q)) + self.action_start

    def learn(
        self,
        obs: Any,
        action: Any,
        reward: float,
        next_obs: Any,
        terminated: bool,
        truncated: bool,
    ) -> dict[str, Any]:
        rows = self._rows(obs)
        a = int(action) - self.action_start
        w = self.w
        estimate = float(w[rows, a].sum())
        self._pending_action = None
        self._cached_obs = _NO_OBS
        if terminated:
            target = float(reward)
        else:
            rows2 = self._indexes(next_obs)
            q2 = w[rows2].sum(axis=0).tolist()
            a2 = self._policy(q2)
            target = float(reward) + self.gamma * q2[a2]
            if not truncated:  # the episode goes on: A' is the next action played
                self._pending_action = a2 + self.action_start
                self._cached_obs, self._cached_rows = next_obs, rows2
        delta = target - estimate
        step = self.alpha * delta
        if self._add is None:
            w[rows, a] += step
        else:
            self._add(w, (rows, a), step)
        return {"epsilon": self.epsilon, "td_error": delta}

    def end_episode(self) -> dict[str, Any]:
        """Decay ε once per episode: ε ← max(ε_min, ε·decay)."""
        self.epsilon = max(self.epsilon_min, self.epsilon * self.epsilon_decay)
        self._cached_obs = _NO_OBS
        self._pending_action = None
        return {"epsilon": self.epsilon}

    # -- persistence --------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], *, episode: int | None = None) -> None:
        """Write the weights (nonzero rows only), the tile coding and ε as JSON, atomically."""
        write_atomic(path, self.policy_bytes(episode=episode))

    def policy_bytes(self, *, episode: int | None = None) -> bytes:
        """What :meth:`save` writes (periodic checkpoints write these bytes themselves)."""
        used = np.flatnonzero(np.any(self.w != 0.0, axis=1))
        return policy_json(
            {
                "format": TILE_FORMAT,
                "version": VERSION,
                "algorithm": self.algorithm,
                "episode": episode,
                "n_actions": self.n_actions,
                "action_start": self.action_start,
                "tile_coding": self.coder.config,
                "epsilon": self.epsilon,
                "hyperparameters": {
                    "alpha": self.alpha,
                    "gamma": self.gamma,
                    "epsilon_min": self.epsilon_min,
                    "epsilon_decay": self.epsilon_decay,
                },
                "rows": used.tolist(),
                "weights": self.w[used].tolist(),
            },
        )

    def load(self, path: str | os.PathLike[str]) -> None:
        """Load the weights only; ε and the other hyperparameters stay this agent's."""
        self._read(path)

    def restore(self, path: str | os.PathLike[str]) -> int | None:
        """Load the weights and ε (to resume after a crash); returns the recorded episode."""
        self.epsilon, episode = resume_point(self._read(path), self.epsilon)
        return episode

    def _read(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        name = str(path)
        data = read_policy(path, TILE_FORMAT)
        if data.get("tile_coding") != self.coder.config:
            raise ValueError(
                f"policy file {name!r} uses the tile coding {data.get('tile_coding')!r}; "
                f"this agent uses {self.coder.config!r}"
            )
        if (data.get("n_actions"), data.get("action_start", 0)) != (
            self.n_actions,
            self.action_start,
        ):
            raise ValueError(
                f"policy file {name!r} has {data.get('n_actions')!r} actions starting at "
                f"{data.get('action_start')!r}; this agent has {self.n_actions} starting at "
                f"{self.action_start}"
            )
        w = np.zeros_like(self.w)
        try:
            rows = np.asarray(data.get("rows"), dtype=np.int64)
            values = np.asarray(data.get("weights"), dtype=np.float64)
            if rows.ndim != 1 or values.shape != (len(rows), self.n_actions):
                raise ValueError("rows and weights disagree in shape")
            if len(rows) and (rows.min() < 0 or rows.max() >= len(w)):
                raise ValueError("a row index is outside the weight table")
            if not np.all(np.isfinite(values)):
                raise ValueError("a weight is not finite")
            w[rows] = values
        except (TypeError, ValueError) as exc:
            raise ValueError(f"policy file {name!r} has unusable weights: {exc}") from exc
        self.w = w
        self._cached_obs = _NO_OBS
        self._pending_action = None
        return data
