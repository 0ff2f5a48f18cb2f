"""Agents: the protocol a worker drives, the built-in tabular, tile-coding and random agents, and
``make_agent`` which turns a config's ``AgentRef`` into one.

Imported by the worker subprocess, so only numpy, gymnasium and the stdlib are used; the
agent classes load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbtrain.agents.factory import (
    BUILTIN_AGENTS,
    agent_label,
    make_agent,
    resolve_factory,
    resolve_import_path,
)
from nbtrain.agents.params import agent_params
from nbtrain.agents.protocol import Agent, AgentFactory, missing_methods

if TYPE_CHECKING:
    from nbtrain.agents.random_agent import RandomAgent
    from nbtrain.agents.tabular import (
        ExpectedSarsaAgent,
        QLearningAgent,
        SarsaAgent,
        TabularAgent,
    )
    from nbtrain.agents.tile_sarsa import TileSarsaAgent

_LAZY = {
    "TabularAgent": "nbtrain.agents.tabular",
    "QLearningAgent": "nbtrain.agents.tabular",
    "SarsaAgent": "nbtrain.agents.tabular",
    "ExpectedSarsaAgent": "nbtrain.agents.tabular",
    "RandomAgent": "nbtrain.agents.random_agent",
    "TileSarsaAgent": "nbtrain.agents.tile_sarsa",
}

__all__ = [
    "BUILTIN_AGENTS",
    "Agent",
    "AgentFactory",
    "ExpectedSarsaAgent",
    "QLearningAgent",
    "RandomAgent",
    "SarsaAgent",
    "TabularAgent",
    "TileSarsaAgent",
    "agent_label",
    "agent_params",
    "make_agent",
    "missing_methods",
    "resolve_factory",
    "resolve_import_path",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbtrain.agents' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
