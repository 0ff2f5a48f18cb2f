"""What the worker needs from an agent, and nothing more.

The worker calls a factory as ``factory(observation_space, action_space, seed=..., **agent_kwargs)``
and drives the object it returns with this loop::

    obs, _ = env.reset(seed=...)
    while True:
        action = agent.act(obs)                      # explore=True while training
        next_obs, reward, terminated, truncated, _ = env.step(action)
        extras = agent.learn(obs, action, reward, next_obs, terminated, truncated)
        obs = next_obs
        if terminated or truncated:
            break
    agent.end_episode()                              # if the agent has it

In eval mode (``mode="eval"``) it calls only ``act(obs, explore=False)``: no ``learn`` and
no ``end_episode``, so playing a policy changes nothing in the agent (nor its ε).

A class is a factory, so ten lines are enough to plug in::

    class Greedy:
        def __init__(self, observation_space, action_space, seed=None, bias=0):
            self.n = action_space.n
            self.bias = bias

        def act(self, obs, explore=True):
            return self.bias % self.n

        def learn(self, obs, action, reward, next_obs, terminated, truncated):
            return {"bias": self.bias}

``learn`` may return ``None`` or a dict of JSON-able extras (recorded with the step);
``end_episode() -> dict | None``, ``save(path)``, ``load(path)`` and ``restore(path)`` are
optional:

- ``save(path)`` writes the agent to ``path`` (the worker gives it a fresh temp file and
  renames it atomically); if it accepts an ``episode`` keyword, the worker passes how many
  episodes were finished, to be recorded for a resume.
- ``load(path)`` takes a saved *policy* as a starting point (``policy_path``) or to play it
  (eval); the built-in agents load the values only and keep their configured ε schedule.
- ``restore(path)`` takes the whole learning state (values and ε) to resume after a crash;
  without it, a restarted worker resumes with ``load``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

REQUIRED_METHODS = ("act", "learn")


@runtime_checkable
class Agent(Protocol):
    """The two methods every agent has; see the module docstring for the call order."""

    def act(self, obs: Any, explore: bool = True) -> Any: ...

    def learn(
        self,
        obs: Any,
        action: Any,
        reward: float,
        next_obs: Any,
        terminated: bool,
        truncated: bool,
    ) -> dict[str, Any] | None: ...


# ``factory(observation_space, action_space, seed=..., **agent_kwargs) -> Agent``
AgentFactory = Callable[..., Agent]


def missing_methods(obj: object) -> list[str]:
    """Required methods ``obj`` lacks or has as non-callables (empty when it is an agent)."""
    return [name for name in REQUIRED_METHODS if not callable(getattr(obj, name, None))]
