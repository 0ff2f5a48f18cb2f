"""Agents for the backend tests, imported by workers wherever they run (PYTHONPATH)."""

from __future__ import annotations

import os
import signal
import sys
import time
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


class _Steps:
    """Random actions; ``at`` counts the steps this agent has taken."""

    def __init__(
        self, observation_space: Any, action_space: Any, seed: int = 0, at: int = 5
    ) -> None:
        self.action_space = action_space
        self.action_space.seed(seed)
        self.at = at
        self.steps = 0

    def act(self, obs: Any, explore: bool = True) -> Any:
        self.steps += 1
        if self.steps == self.at:
            self.misbehave()
        return self.action_space.sample()

    def learn(self, *args: Any) -> None:
        return None

    def misbehave(self) -> None:
        raise NotImplementedError


class Hangs(_Steps):
    """A step that never returns (a stuck simulator): only a kill ends it."""

    def misbehave(self) -> None:
        print("hanging now", flush=True)
        while True:
            time.sleep(3600)


class Exits(_Steps):
    """Calls sys.exit(3) mid-run: the worker's exit code is 3, as for a process."""

    def misbehave(self) -> None:
        print("exiting on purpose", file=sys.stderr)
        sys.exit(3)


class KillsItself(_Steps):
    """Kills its own process (a crash in native code, the OOM killer)."""

    def misbehave(self) -> None:
        os.kill(os.getpid(), signal.SIGKILL)
