"""Agents for the worker tests, imported by worker subprocesses (tests/worker on PYTHONPATH)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, ClassVar

import gymnasium as gym

from nbtrain.agents.tabular import ExpectedSarsaAgent, QLearningAgent, SarsaAgent


class _Base:
    def __init__(self, observation_space: Any, action_space: Any, seed: int = 0, **kw: Any) -> None:
        self.n = int(action_space.n)
        self.kw = kw
        self.steps = 0

    def act(self, obs: Any, explore: bool = True) -> int:
        self.steps += 1
        return self.steps % self.n

    def learn(self, *args: Any) -> dict[str, Any]:
        return {"steps": self.steps}


class Raises(_Base):
    """Fails on a given step with a recognisable message."""

    def learn(self, *args: Any) -> dict[str, Any]:
        if self.steps >= self.kw.get("fail_at", 5):
            raise RuntimeError("agent exploded on purpose")
        return super().learn(*args)


class BadAction(_Base):
    """Returns an action the env does not have (``bad``, default 99) on its third step."""

    def act(self, obs: Any, explore: bool = True) -> Any:
        action = super().act(obs, explore)
        return self.kw.get("bad", 99) if self.steps == 3 else action


class Stuck(_Base):
    """Every step takes ``sleep`` seconds and cannot be interrupted (a slow env or agent)."""

    def act(self, obs: Any, explore: bool = True) -> int:
        deadline = time.monotonic() + self.kw.get("sleep", 30.0)
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return super().act(obs, explore)


class Chatty(_Base):
    """Prints ``chars`` characters to stdout every step."""

    def act(self, obs: Any, explore: bool = True) -> int:
        print("x" * self.kw.get("chars", 100_000))
        return super().act(obs, explore)


class GcProbe(_Base):
    """Reports the collector settings the training loop runs under."""

    def end_episode(self) -> dict[str, Any]:
        import gc

        return {"gc_threshold0": gc.get_threshold()[0], "gc_frozen": gc.get_freeze_count()}


class FloatExtras(_Base):
    """learn() returns a float instead of a dict (a common slip)."""

    def learn(self, *args: Any) -> Any:
        return 0.25


class OpaqueExtras(_Base):
    """learn() returns a dict holding a value no wire format can carry."""

    def learn(self, *args: Any) -> dict[str, Any]:
        return {"model": object()}


class OpaqueEpisodeExtras(_Base):
    """end_episode() returns a dict holding a value no wire format can carry."""

    def end_episode(self) -> dict[str, Any]:
        return {"model": object()}


class BadSave(_Base):
    """save() writes part of a file and then fails, as a full disk would."""

    def save(self, path: str) -> None:
        with open(path, "w") as fh:
            fh.write("{partial")
        raise OSError(28, "No space left on device (simulated in save)")


class NoEpisodeSave(_Base):
    """A custom agent with save/load but no episode keyword and no restore."""

    def save(self, path: str) -> None:
        with open(path, "w") as fh:
            fh.write(str(self.steps))

    def load(self, path: str) -> None:
        with open(path) as fh:
            self.steps = int(fh.read())

    def learn(self, *args: Any) -> dict[str, Any]:
        return {"steps": self.steps}


class SaveOnly(_Base):
    """Saves its step count but cannot load it: a restart starts it afresh."""

    def save(self, path: str) -> None:
        with open(path, "w") as fh:
            fh.write(str(self.steps))


class ExitsMidRun(_Base):
    """Calls sys.exit() at the end of its third episode, as notebook code sometimes does."""

    episodes = 0

    def end_episode(self) -> dict[str, Any]:
        self.episodes += 1
        if self.episodes == 3:
            sys.exit("the agent gave up")
        return {}


class TextPolicyBytes(NoEpisodeSave):
    """policy_bytes() returns text instead of bytes: a periodic checkpoint must fail loudly."""

    def policy_bytes(self, *, episode: int | None = None) -> str:
        return str(self.steps)


class _CountsAndSnapshots(_Base):
    """Counts ended episodes; has ``policy_bytes`` (periodic checkpoints are snapshots)
    and a ``save`` writing the same bytes."""

    episodes = 0

    def end_episode(self) -> dict[str, Any]:
        self.episodes += 1
        return {}

    def policy_bytes(self, *, episode: int | None = None) -> bytes:
        return b'{"episode": %d}' % (episode or 0)

    def save(self, path: str, *, episode: int | None = None) -> None:
        with open(path, "wb") as fh:
            fh.write(self.policy_bytes(episode=episode))


class SnapshotThenFail(_CountsAndSnapshots):
    """Fails in ``learn`` once ``fail_after`` episodes have ended."""

    def learn(self, *args: Any) -> dict[str, Any]:
        if self.episodes >= self.kw.get("fail_after", 7):
            raise RuntimeError("agent exploded on purpose")
        return super().learn(*args)


class PlainQLearning(QLearningAgent):
    """The built-in Q-learning through the generic act/learn loop (not the exact type)."""


class PlainExpectedSarsa(ExpectedSarsaAgent):
    """The built-in Expected SARSA through the generic act/learn loop."""


class PlainSarsa(SarsaAgent):
    """The built-in SARSA through the generic act/learn loop."""


class _Corridor(gym.Env[int, int]):
    """Four states, two actions, starting at state 0: what the test environments share."""

    observation_space = gym.spaces.Discrete(4)
    action_space = gym.spaces.Discrete(2)
    state = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.state = 0
        return self.state, {}


class SlowCorridor(_Corridor):
    """Never terminates; every step takes ``delay`` seconds (a slow simulator: one episode
    outlasts several heartbeats)."""

    def __init__(self, delay: float = 0.03) -> None:
        self.delay = delay

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        time.sleep(self.delay)
        self.state = (self.state + (1 if action else 3)) % 4
        return self.state, 0.0, False, False, {}


gym.register("NbtSlowCorridor-v0", entry_point=SlowCorridor, max_episode_steps=40)


class BrokenCorridor(_Corridor):
    """A simulator that fails on its ``fail_at``-th step, whatever the action."""

    def __init__(self, fail_at: int = 2) -> None:
        self.fail_at = fail_at
        self.steps = 0

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.steps += 1
        if self.steps >= self.fail_at:
            raise RuntimeError("the simulator crashed")
        return self.state, 0.0, False, False, {}


gym.register("NbtBrokenCorridor-v0", entry_point=BrokenCorridor, max_episode_steps=40)


class BytesBadExtrasLater(_CountsAndSnapshots):
    """``learn`` returns a float (not a dict) once ``bad_after`` episodes have ended, so the
    batch holding that step cannot be sent."""

    def learn(self, *args: Any) -> Any:
        if self.episodes >= self.kw.get("bad_after", 4):
            return 0.25
        return super().learn(*args)


class BytesWithoutSave(_Base):
    """``policy_bytes`` but no ``save``: it cannot be checkpointed at all."""

    def policy_bytes(self, *, episode: int | None = None) -> bytes:
        return b"{}"


class BlasThreads(_Base):
    """Each step's extras say how many threads OpenBLAS was given in this process."""

    def learn(self, *args: Any) -> dict[str, Any]:
        return {"openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS")}


class SharedInfoLake(_Corridor):
    """``step`` returns the same info dict every time, which gymnasium's passive checker
    warns about at the second step; the first episode ends after one step, so that second
    step comes in the second episode."""

    def __init__(self) -> None:
        self.episode = -1
        self.info: dict[str, Any] = {}

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        self.episode += 1
        return super().reset(seed=seed, options=options)

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.state += 1
        done = self.episode == 0 or self.state == 3
        return self.state, float(done), done, False, self.info


gym.register("NbtSharedInfoLake-v0", entry_point=SharedInfoLake, max_episode_steps=10)


def _through_checks() -> bool:
    """Whether the running ``step`` was called through gymnasium's checker or order guard."""
    from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker

    frame = sys._getframe(2)
    while frame is not None:
        if type(frame.f_locals.get("self")) in (PassiveEnvChecker, OrderEnforcing):
            return True
        frame = frame.f_back
    return False


class CheckProbe(_Corridor):
    """Episodes of exactly three steps; a step's reward is 1.0 when it was called through
    gymnasium's ``PassiveEnvChecker`` or ``OrderEnforcing``, else 0.0: an episode's return
    tells how many of its steps paid for those two layers."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.state += 1
        return self.state, float(_through_checks()), self.state == 3, False, {}

    def render(self) -> str:
        return f"state {self.state}\n"


gym.register("NbtCheckProbe-v0", entry_point=CheckProbe, max_episode_steps=10)


class LimitProbe(_Corridor):
    """Never terminates (its registered limit of 4 steps ends every episode); a step's
    reward is 1.0 when it was called through gymnasium's ``TimeLimit``, else 0.0."""

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        from gymnasium.wrappers import TimeLimit

        self.state = (self.state + 1) % 4
        frame = sys._getframe(1)
        through = False
        while frame is not None and not through:
            through = type(frame.f_locals.get("self")) is TimeLimit
            frame = frame.f_back
        return self.state, float(through), False, False, {}


gym.register("NbtLimitProbe-v0", entry_point=LimitProbe, max_episode_steps=4)
