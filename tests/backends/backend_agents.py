"""Agents for the backend tests, imported by workers wherever they run (PYTHONPATH)."""

from __future__ import annotations

import os
from typing import Any


class WhereAmI:
    """Random actions; each step's extras say which worker id the process was given."""

    def __init__(self, observation_space: Any, action_space: Any, seed: int = 0) -> None:
        self.action_space = action_space
        self.action_space.seed(seed)
        self.worker_id = os.environ.get("WORKER_ID", "")

    def act(self, obs: Any, explore: bool = True) -> Any:
        return self.action_space.sample()

    def learn(self, *args: Any) -> dict[str, Any]:
        return {"env_worker_id": self.worker_id}
