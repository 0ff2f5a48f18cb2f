"""Agents used by the pipeline tests, imported by worker subprocesses (PYTHONPATH)."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any


class _Base:
    def __init__(self, observation_space: Any, action_space: Any, seed: int = 0, **kw: Any) -> None:
        self.action_space = action_space
        self.action_space.seed(seed)
        self.kw = kw
        self.steps = 0

    def act(self, obs: Any, explore: bool = True) -> Any:
        self.steps += 1
        return self.action_space.sample()

    def learn(self, *args: Any) -> None:
        return None


class Raises(_Base):
    """Fails on a given step with a recognisable message."""

    def act(self, obs: Any, explore: bool = True) -> Any:
        if self.steps >= self.kw.get("fail_at", 5):
            raise RuntimeError("agent exploded on purpose")
        return super().act(obs, explore)


class Slow(_Base):
    """Sleeps every step so a run lasts long enough to be stopped or killed."""

    def act(self, obs: Any, explore: bool = True) -> Any:
        time.sleep(self.kw.get("sleep", 0.01))
        return super().act(obs, explore)


class IgnoresTerm(Slow):
    """A slow agent whose worker ignores SIGTERM (only SIGKILL ends it from outside)."""

    def act(self, obs: Any, explore: bool = True) -> Any:
        if self.steps == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return super().act(obs, explore)


class Spawner(Slow):
    """Starts a child process (as an environment's simulator might) and writes its pid to
    ``child.pid`` in the working directory: stopping the worker must end it too."""

    def act(self, obs: Any, explore: bool = True) -> Any:
        if self.steps == 0:
            import subprocess

            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            with open("child.pid", "w") as f:
                f.write(str(child.pid))
        return super().act(obs, explore)


class Impostor(_Base):
    """Writes one valid frame stamped with another run's and worker's ids onto the
    telemetry pipe, mid-run: the kernel must store none of it."""

    def act(self, obs: Any, explore: bool = True) -> Any:
        if self.steps == 3:
            from nbtrain.wire.codec import encode_frame
            from nbtrain.wire.events import Steps

            event = Steps(
                run_id="01ARZ3NDEKTSV4RRFFQ69G5FAV", worker_id="000009", ep_index=[0],
                step_index=[0], action=[0], reward=[0.0], terminated=[False],
                truncated=[False], obs=[0], extras=[None], ts=[0.0],
            )  # fmt: skip
            os.write(int(os.environ["NBTRAIN_TELEMETRY_FD"]), encode_frame(event))
        return super().act(obs, explore)


class Chatty(_Base):
    """Prints a lot to stdout and stderr; the kernel must drain both and keep telemetry intact."""

    def act(self, obs: Any, explore: bool = True) -> Any:
        print("x" * 10_000)
        print("e" * 1_000, file=sys.stderr)
        return super().act(obs, explore)


class Garbage(_Base):
    """Writes garbage straight onto the telemetry pipe once, mid-run."""

    def act(self, obs: Any, explore: bool = True) -> Any:
        if self.steps == 3:
            fd = int(os.environ["NBTRAIN_TELEMETRY_FD"])
            os.write(fd, b"\x00garbage\xffNBT\x09\x00\x00\x00\x05junk")
        return super().act(obs, explore)


class BadExtrasAfter(_Base):
    """``learn`` returns a float, not a dict, once ``bad_after`` episodes have ended: the
    batch holding that step cannot be encoded and the worker fails."""

    episodes = 0

    def end_episode(self) -> dict[str, Any]:
        self.episodes += 1
        return {}

    def learn(self, *args: Any) -> Any:
        if self.episodes >= self.kw.get("bad_after", 3):
            return 0.25
        return {"steps": self.steps}
