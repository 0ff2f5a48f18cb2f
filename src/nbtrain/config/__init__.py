"""The run config: :class:`TrainConfig` and its parts, validated in the kernel before launch."""

from __future__ import annotations

from typing import Any

from nbtrain.config.agentref import BUILTIN_AGENTS, TABULAR_AGENTS
from nbtrain.config.evaluation import evaluation_config
from nbtrain.config.limits import DEFAULT_STEP_LIMIT, MAX_COUNT, MAX_WORKERS
from nbtrain.config.model import TelemetryConfig, TrainConfig, WorkerSpec

__all__ = [
    "BUILTIN_AGENTS",
    "DEFAULT_STEP_LIMIT",
    "MAX_COUNT",
    "MAX_WORKERS",
    "TABULAR_AGENTS",
    "TABULAR_AGENT_KWARGS",
    "TelemetryConfig",
    "TrainConfig",
    "WorkerSpec",
    "evaluation_config",
]


def __getattr__(name: str) -> Any:
    if name == "TABULAR_AGENT_KWARGS":  # read from the agents' signatures on first use
        from nbtrain.config import agentkw

        return agentkw.TABULAR_AGENT_KWARGS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
