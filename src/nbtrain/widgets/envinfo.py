"""Facts about Gymnasium environments that the widgets need: which registered ids an agent
can train on, and the grid layout of the toy-text worlds for drawing them.

The env list is computed once per process (making each registered env costs ~1 ms, and
envs whose dependencies are missing are left out) and sent to the form as plain data.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

from nbtrain.config.agentref import TABULAR_AGENTS

__all__ = [
    "ACTION_LABELS",
    "AGENT_SPACES",
    "GRID_KINDS",
    "EnvFacts",
    "env_catalogue",
    "env_mismatch",
    "envs_for_agent",
    "grid_for_env",
    "grid_kind",
    "taxi_decode",
]

EnvFacts = dict[str, Any]

# The spaces each built-in agent handles: observation kinds, action kinds, and the observation
# kinds that need a kwarg first (a tabular agent on Box observations needs ``bins``). The
# form's env list (JS) and its env error (here) both read this; agents not listed take any.
AGENT_SPACES: dict[str, dict[str, Any]] = {
    **{
        name: {"obs": ["discrete"], "action": ["discrete"], "obs_with": {"box": "bins"}}
        for name in TABULAR_AGENTS
    },
    "tile_sarsa": {"obs": ["box"], "action": ["discrete"], "obs_with": {}},
}

# The toy-text worlds the widgets draw as a grid (the view learns them from this, item 5).
GRID_KINDS = ("frozenlake", "cliffwalking", "taxi")

# Action names by grid kind, in the envs' action order.
ACTION_LABELS: dict[str, list[str]] = {
    "frozenlake": ["Left", "Down", "Right", "Up"],
    "cliffwalking": ["Up", "Right", "Down", "Left"],
    "taxi": ["South", "North", "East", "West", "Pickup", "Dropoff"],
}


def _space_kind(space: Any) -> str:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return "discrete"
    if isinstance(space, spaces.Box):
        return "box"
    return type(space).__name__.lower()


@functools.cache
def env_catalogue() -> tuple[EnvFacts, ...]:
    """One entry per registered id that can be made here: id, observation and action kinds."""
    import gymnasium as gym

    out: list[EnvFacts] = []
    for env_id in sorted(gym.registry):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                env = gym.make(env_id)
        except Exception:  # missing optional dependency (MuJoCo, Box2D, jax, ...)
            continue
        try:
            out.append(
                {
                    "id": env_id,
                    "obs": _space_kind(env.observation_space),
                    "action": _space_kind(env.action_space),
                }
            )
        finally:
            env.close()
    return tuple(out)


def envs_for_agent(agent: str) -> list[str]:
    """Ids the agent can handle without extra kwargs (``AGENT_SPACES``; others: all)."""
    return [f["id"] for f in env_catalogue() if not env_mismatch(agent, f["id"])]


def env_mismatch(agent: str, env_id: str, agent_kwargs: dict[str, Any] | None = None) -> str:
    """Why ``agent`` cannot train on the registered ``env_id`` ("" when it can, or when
    either is unknown here: the config's own validation speaks then)."""
    needs = AGENT_SPACES.get(agent)
    if needs is None:
        return ""
    facts = next((f for f in env_catalogue() if f["id"] == env_id), None)
    if facts is None:
        return ""
    if facts["action"] not in needs["action"]:
        return (
            f"{agent} picks from a discrete set of actions; {env_id} has {facts['action']} "
            "actions (use a custom agent)"
        )
    kwarg = needs["obs_with"].get(facts["obs"])
    if facts["obs"] in needs["obs"] or (kwarg and (agent_kwargs or {}).get(kwarg)):
        return ""
    if agent in TABULAR_AGENTS:
        return (
            f"{agent} keeps a table per state; {env_id} has {facts['obs']} observations: "
            'give "bins" (and "bounds") in Other agent kwargs, or use tile_sarsa'
        )
    return (
        f"{agent} tile-codes continuous (Box) observations; {env_id} has {facts['obs']} "
        "observations (use q_learning, sarsa or expected_sarsa)"
    )


def grid_kind(env_id: str) -> str | None:
    name = env_id.rsplit("/", 1)[-1].split(":")[-1].lower()
    for kind in GRID_KINDS:
        if name.startswith(kind):
            return kind
    return None


def grid_for_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``{"kind", "rows"}`` exactly as a worker's GridMap event carries it, or None.

    The env is made (its map may be custom) and read by the worker's own layout code, so a
    replay draws the same grid as the live view. A map drawn at random each time the env is
    made (FrozenLake with ``map_name=None``) is not the worker's: None then (made twice,
    the two differ), and the replay shows observations without a grid.
    """
    if grid_kind(env_id) is None:
        return None
    first, second = _layout(env_id, env_kwargs), _layout(env_id, env_kwargs)
    if first is None or first != second:
        return None
    return {"kind": first[0], "rows": list(first[1])}


def _layout(env_id: str, env_kwargs: dict[str, Any] | None) -> tuple[str, list[str]] | None:
    import gymnasium as gym

    from nbtrain.worker.frames import grid_layout

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(env_id, **(env_kwargs or {}))
    try:
        layout = grid_layout(env)
    finally:
        env.close()
    return None if layout is None else (layout[0], list(layout[1]))


def taxi_decode(state: int) -> dict[str, int]:
    """Taxi's encoded state ``((row*5 + col)*5 + passenger)*4 + destination`` as its parts."""
    if not 0 <= state < 500:
        raise ValueError(f"Taxi state {state!r} is out of range; need 0 <= state < 500")
    destination = state % 4
    state //= 4
    passenger = state % 5
    state //= 5
    return {"row": state // 5, "col": state % 5, "passenger": passenger, "destination": destination}
