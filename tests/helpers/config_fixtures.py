"""Importable envs and agents for the config tests ("pkg.mod:Env-v0" / "pkg.mod:factory").

Importing this module registers its envs, as a user's own env package would.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium import spaces

GRID_ID = "NbtConfigGrid-v0"
KWARGS_ID = "NbtConfigKwargs-v0"
DICT_ID = "NbtConfigDict-v0"

NOT_CALLABLE = 3

# Every agent construction lands here: validation must never construct an imported agent.
CALLS: list[dict[str, Any]] = []


class GridEnv(gym.Env[int, int]):
    """A corridor of ``size`` cells; reaching the right end pays 1."""

    metadata = {"render_modes": ["ansi"]}  # noqa: RUF012

    def __init__(self, size: int = 4, render_mode: str | None = None) -> None:
        if size < 2:
            raise ValueError(f"size must be >= 2, got {size}")
        self.size = size
        self.render_mode = render_mode
        self.observation_space = spaces.Discrete(size)
        self.action_space = spaces.Discrete(2)
        self.pos = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.pos = 0
        return self.pos, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.pos = max(0, min(self.size - 1, self.pos + (1 if action else -1)))
        done = self.pos == self.size - 1
        return self.pos, float(done), done, False, {}

    def render(self) -> str:
        return "".join("A" if i == self.pos else "." for i in range(self.size))


class KwargsEnv(GridEnv):
    """Takes ``**kwargs``, so only constructing it can reveal a bad keyword."""

    def __init__(self, **kwargs: Any) -> None:
        size = kwargs.pop("size", 4)
        if kwargs:
            raise TypeError(f"KwargsEnv got unexpected keyword arguments {sorted(kwargs)}")
        super().__init__(size=size)


class DictObsEnv(GridEnv):
    """Dict observations: no tabular agent can index them."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Dict({"pos": spaces.Discrete(4)})  # type: ignore[assignment]


class ImportableAgent:
    """A minimal agent a worker can import by name."""

    def __init__(self, observation_space: Any, action_space: Any, seed: int = 0, **kw: Any) -> None:
        CALLS.append(kw)
        self.action_space = action_space
        self.kw = kw

    def act(self, obs: Any, explore: bool = True) -> int:
        return 0

    def learn(self, *args: Any) -> None:
        return None


def make_agent(observation_space: Any, action_space: Any, seed: int = 0, **kw: Any) -> Any:
    return ImportableAgent(observation_space, action_space, seed, **kw)


class Outer:
    class Inner:
        @staticmethod
        def build(observation_space: Any, action_space: Any, seed: int = 0) -> ImportableAgent:
            return ImportableAgent(observation_space, action_space, seed)


for _id, _entry in ((GRID_ID, GridEnv), (KWARGS_ID, KwargsEnv), (DICT_ID, DictObsEnv)):
    if _id not in gym.registry:
        gym.register(_id, entry_point=f"{__name__}:{_entry.__name__}")
