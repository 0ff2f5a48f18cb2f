"""The run config: :class:`TrainConfig` and its parts, validated in the kernel before launch."""

from __future__ import annotations

from nbtrain.config.agentkw import TABULAR_AGENT_KWARGS
from nbtrain.config.agentref import BUILTIN_AGENTS, TABULAR_AGENTS
from nbtrain.config.model import TelemetryConfig, TrainConfig, WorkerSpec

__all__ = [
    "BUILTIN_AGENTS",
    "TABULAR_AGENTS",
    "TABULAR_AGENT_KWARGS",
    "TelemetryConfig",
    "TrainConfig",
    "WorkerSpec",
]
