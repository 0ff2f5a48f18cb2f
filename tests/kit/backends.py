"""The configs the pipeline tests run on every backend, and reading their rows back."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbtrain

# The type of the ``launch`` fixture (``nbtrain.launch``).
Launch = Callable[..., nbtrain.Run]


def config(**overrides: object) -> nbtrain.TrainConfig:
    """A short deterministic FrozenLake run on two workers, with ``overrides``."""
    fields: dict[str, object] = {
        "env_id": "FrozenLake-v1",
        "env_kwargs": {"is_slippery": False},
        "agent": "q_learning",
        "episodes": 10,
        "max_steps_per_episode": 50,
        "workers": 2,
    }
    fields.update(overrides)
    return nbtrain.TrainConfig.model_validate(fields)


def slow(episodes: int = 10_000, **overrides: object) -> nbtrain.TrainConfig:
    """A run that goes on until stopped (tests/helpers/pipeline_agents.py's ``Slow``)."""
    return config(
        agent="pipeline_agents:Slow", episodes=episodes, agent_kwargs={"sleep": 0.002}, **overrides
    )


def worker_rows(db: Path, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's ``workers`` rows by worker id, read with plain ``sqlite3``."""
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        rows = con.execute("SELECT * FROM workers WHERE run_id = ?", (run_id,)).fetchall()
    return {row["worker_id"]: dict(row) for row in rows}
