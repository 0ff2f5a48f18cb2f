"""The one-call training episode (``agents/tabular_fused.py``) against ``act`` + ``learn``:
the same actions, rewards, step rows, Q-values, random state and cached observation, step by
step, on real Gymnasium environments; and which agents get it."""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbtrain.agents import make_agent
from nbtrain.agents.tabular import _NO_OBS, QLearningAgent, SarsaAgent, TabularAgent
from nbtrain.agents.tabular_fused import fused_episode
from nbtrain.seeding import episode_seed
from nbtrain.worker.config_file import AgentRef
from nbtrain.worker.envchain import time_limit_bypass

ENVS: dict[str, dict[str, Any]] = {
    "FrozenLake-v1": {"is_slippery": False},
    "FrozenLake8x8-v1": {},
    "CliffWalking-v1": {},
    "Taxi-v4": {},
}


class Flag:
    """``stop`` turns true once ``at`` environment steps were taken (None: never), as if
    a stop request arrived during that step. (Not from ``steps_done``: the one-call episode
    adds to that counter once an episode.)"""

    def __init__(self, at: int | None) -> None:
        self.taken = 0
        self.at = at

    def counting(self, step: Any) -> Any:
        def counted(action: Any) -> Any:
            self.taken += 1
            return step(action)

        return counted

    @property
    def stop(self) -> bool:
        return self.at is not None and self.taken >= self.at


class Counters:
    steps_done = 0


class Clock:
    """A fake ``time.time`` that advances 1 per call: flushes land at known steps."""

    def __init__(self) -> None:
        self.t = 0.0
        self.flushes: list[int] = []

    def now(self) -> float:
        self.t += 1.0
        return self.t


def _make(
    env_id: str, algorithm: str, seed: int, kwargs: dict[str, Any], limit: int = 40
) -> tuple[Any, Any]:
    env = gym.make(env_id, max_episode_steps=limit, **ENVS[env_id])
    agent = make_agent(
        AgentRef(kind="builtin", name=algorithm),
        env.observation_space,
        env.action_space,
        seed=seed,
        agent_kwargs=kwargs,
    )
    return env, agent


def _generic_episode(
    agent: TabularAgent, step: Any, obs: Any, ep: int, flag: Flag, counters: Counters,
    rows: list[Any] | None, clock: Clock, deadline: float, flush_every: float,
) -> tuple[Any, ...]:  # fmt: skip
    """The worker's generic inner loop (train mode, every step or none, no frames)."""
    total, t, extras = 0.0, 0, None
    terminated = truncated = False
    while True:
        action = agent.act(obs, explore=True)
        next_obs, reward, terminated, truncated, _ = step(action)
        extras = agent.learn(obs, action, reward, next_obs, terminated, truncated)
        total += reward
        if rows is not None:
            ts = clock.now()
            rows.append((ep, t, action, reward, terminated, truncated, next_obs, extras, ts))
            if ts >= deadline:
                clock.flushes.append(len(rows))
                deadline = ts + flush_every
        t += 1
        counters.steps_done += 1
        obs = next_obs
        if terminated or truncated or flag.stop:
            break
    return total, t, terminated, truncated, deadline


def _play(fused: bool, env_id: str, algorithm: str, seed: int, kwargs: dict[str, Any],
          episodes: int, record: bool, stop_at: int | None,
          limit: int = 40, bypass: bool = False) -> dict[str, Any]:  # fmt: skip
    """One run of ``episodes``; ``bypass``: the one-call episode steps the layer below
    ``TimeLimit`` and truncates itself (the generic side always steps the whole chain)."""
    env, agent = _make(env_id, algorithm, seed, kwargs, limit)
    counters = Counters()
    flag = Flag(stop_at)
    below = time_limit_bypass(env) if bypass else None
    if bypass:
        assert below is not None
        assert below[1] == limit
    step = flag.counting(env.step if below is None else below[0])
    clock = Clock()
    rows: list[Any] | None = [] if record else None
    results = []
    deadline, flush_every = 5.0, 7.0

    def flush() -> float:
        clock.flushes.append(len(rows or ()))
        return clock.t + flush_every

    append = None if rows is None else rows.append
    run = fused_episode(
        agent, step, flag, counters, append, clock.now, flush, None if below is None else limit
    )
    assert run is not None
    for ep in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, ep))
        if fused:
            result = run(obs, ep, deadline)
        else:
            result = _generic_episode(
                agent, step, obs, ep, flag, counters, rows, clock, deadline, flush_every
            )
            # the one-call episode also ends a finished episode for the agent, and returns
            # the ε of end_episode()'s {"epsilon": ε}
            ended = agent.end_episode() if result[2] or result[3] else None
            result = (*result, None if ended is None else ended["epsilon"])
        deadline = result[4]
        results.append(result)
        if not (result[2] or result[3]):
            break  # stopped mid-episode
    if fused and rows is not None:  # its rows carry learn()'s extras as two values
        rows = [(*r[:7], {"epsilon": r[7], "td_error": r[8]}, r[9]) for r in rows]
    return {
        "results": results,
        "rows": rows,
        "flushes": clock.flushes,
        "q": agent.q,
        "rng": agent._rng.getstate(),
        "epsilon": agent.epsilon,
        # the cached state counts only while an observation is cached
        "cached": None
        if agent._cached_obs is _NO_OBS
        else (agent._cached_obs, agent._cached_state),
        "steps": counters.steps_done,
        "pending": getattr(agent, "_pending_action", None),  # SARSA's A' for the next act()
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    env_id=st.sampled_from(sorted(ENVS)),
    algorithm=st.sampled_from(["q_learning", "expected_sarsa", "sarsa"]),
    seed=st.integers(0, 2**32 - 1),
    epsilon=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    floor=st.sampled_from([0.0, 0.995]),  # ε_min as a share of ε: 0.995 is reached at once
    initial_q=st.sampled_from([0.0, 1.0, -0.5]),
    episodes=st.integers(1, 12),
    record=st.booleans(),
    stop_at=st.none() | st.integers(1, 200),
    limit=st.sampled_from([1, 2, 7, 40]),
    bypass=st.booleans(),
)
def test_a_fused_episode_is_act_and_learn_step_by_step(
    env_id: str, algorithm: str, seed: int, epsilon: float, floor: float,
    initial_q: float, episodes: int, record: bool, stop_at: int | None,
    limit: int, bypass: bool,
) -> None:  # fmt: skip
    kwargs = {"epsilon": epsilon, "epsilon_min": epsilon * floor, "initial_q": initial_q}
    args = (env_id, algorithm, seed, kwargs, episodes, record, stop_at, limit)
    generic = _play(False, *args)
    fused = _play(True, *args, bypass=bypass)
    assert fused == generic


@pytest.mark.parametrize("algorithm", ["q_learning", "sarsa"])
def test_a_fused_episode_below_time_limit_truncates_where_it_would(algorithm: str) -> None:
    # a random walk on the 8x8 map outlives 5 steps: every episode is cut by the limit
    args = ("FrozenLake8x8-v1", algorithm, 4, {"epsilon": 1.0}, 6, True, None, 5)
    fused = _play(True, *args, bypass=True)
    assert fused == _play(False, *args)
    assert any(result[3] and result[1] == 5 for result in fused["results"])
    assert all(result[1] <= 5 for result in fused["results"])
    # the layer below TimeLimit never truncates: without its limit, the same episodes run on
    env, agent = _make("FrozenLake8x8-v1", algorithm, 4, {"epsilon": 1.0}, 5)
    below = time_limit_bypass(env)
    assert below is not None
    run = fused_episode(agent, below[0], Flag(None), Counters(), None, time.time, time.time)
    assert run is not None
    lengths = [run(env.reset(seed=episode_seed(4, ep))[0], ep, 1e300)[1] for ep in range(6)]
    assert max(lengths) > 5


def test_the_comparison_sees_a_difference() -> None:
    # the property above would pass vacuously if both sides ran the same code
    kwargs = {"epsilon": 0.5}
    a = _play(True, "FrozenLake-v1", "q_learning", 1, kwargs, 5, True, None)
    b = _play(True, "FrozenLake-v1", "q_learning", 2, kwargs, 5, True, None)
    assert a != b
    assert a["rows"]
    assert a["flushes"]


def test_only_the_exact_built_in_types_are_fused() -> None:
    env = gym.make("FrozenLake-v1")
    space = (env.observation_space, env.action_space)

    class Custom(QLearningAgent):
        pass

    def fused(agent: object) -> Any:
        return fused_episode(agent, env.step, Flag(None), Counters(), None, time.time, time.time)

    assert fused(QLearningAgent(*space, seed=0)) is not None
    assert fused(_make("FrozenLake-v1", "expected_sarsa", 0, {})[1]) is not None
    assert fused(SarsaAgent(*space, seed=0)) is not None
    assert fused(Custom(*space, seed=0)) is None
    assert fused(object()) is None


@pytest.mark.parametrize("algorithm", ["q_learning", "expected_sarsa", "sarsa"])
def test_the_agent_is_left_as_learn_leaves_it_after_a_stop(algorithm: str) -> None:
    # stopped after the 3rd step of a long episode: the next act() must reuse its state
    generic = _play(False, "FrozenLake8x8-v1", algorithm, 3, {"epsilon": 1.0}, 1, True, 3)
    fused = _play(True, "FrozenLake8x8-v1", algorithm, 3, {"epsilon": 1.0}, 1, True, 3)
    assert fused["steps"] == 3
    assert fused["cached"] is not None
    assert fused["cached"] == generic["cached"]
    assert fused["pending"] == generic["pending"]
    assert (fused["pending"] is not None) == (algorithm == "sarsa")
