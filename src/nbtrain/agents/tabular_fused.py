"""A whole training episode of a built-in tabular agent (Q-learning, Expected SARSA, SARSA)
in one call.

The worker's generic loop calls ``agent.act`` and ``agent.learn`` at every step; for a
FrozenLake step of ~6 us, those two calls, their attribute lookups and the extras dict that
``learn`` returns were ~8 % of a run against the bare loop a user would write
(``benchmarks/vs_bare.py``). Here the same ε-greedy choice and the same update are written
inline, reading the agent's state once per episode: the same random draws in the same
order, the same Q-values, the same step rows. ``tests/agents/test_tabular_fused.py`` holds
this to the methods it replaces, step by step. The two functions below share their
preamble on purpose: a helper call per episode is what this module removes.

Used by the worker for training episodes of an agent whose type is exactly one of the
built-in tabular agents (a subclass may override ``act`` or ``learn``) on discrete
observations and actions, with every step or none recorded, no frames and no
``step_delay``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from nbtrain.agents.tabular import (
    _NO_OBS,
    ExpectedSarsaAgent,
    QLearningAgent,
    SarsaAgent,
    TabularAgent,
)

__all__ = ["EpisodeFn", "EpisodeResult", "fused_episode"]

EpisodeResult = tuple[float, int, bool, bool, float]
"""``(total_reward, length, terminated, truncated, flush_deadline)``"""


class _Flag(Protocol):
    stop: bool


class _Counters(Protocol):
    steps_done: int


class EpisodeFn(Protocol):
    def __call__(
        self,
        agent: TabularAgent,
        step: Callable[[Any], tuple[Any, Any, bool, bool, Any]],
        obs: Any,
        ep: int,
        *,
        flag: _Flag,
        counters: _Counters,
        append: Callable[[tuple[Any, ...]], None] | None,
        now: Callable[[], float],
        deadline: float,
        flush: Callable[[], float],
    ) -> EpisodeResult: ...


def fused_episode(agent: object) -> EpisodeFn | None:
    """The one-call episode for ``agent``, or None where the generic loop must run."""
    if type(agent) is QLearningAgent or type(agent) is ExpectedSarsaAgent:
        return _episode
    if type(agent) is SarsaAgent:
        return _sarsa_episode
    return None


def _episode(
    agent: TabularAgent,
    step: Callable[[Any], tuple[Any, Any, bool, bool, Any]],
    obs: Any,
    ep: int,
    *,
    flag: _Flag,
    counters: _Counters,
    append: Callable[[tuple[Any, ...]], None] | None,
    now: Callable[[], float],
    deadline: float,
    flush: Callable[[], float],
) -> EpisodeResult:
    """Play and learn one episode from ``obs`` (explore on), recording each step with
    ``append`` as a ``TdStepRow`` (``flush`` when a step passes ``deadline``): the generic
    loop's row with learn()'s extras dict as its two values.

    Stops after the step during which ``flag.stop`` was set, as the generic loop does."""
    q = agent.q
    rand = agent._random
    eps = agent.epsilon
    n = agent.n_actions
    start = agent.action_start
    alpha = agent.alpha
    gamma = agent.gamma
    encode = agent._encode
    expected = type(agent) is ExpectedSarsaAgent
    s = agent._cached_state if obs is agent._cached_obs else encode(obs)
    s2 = s
    total = 0.0
    t = 0
    terminated = truncated = False
    next_obs: Any = obs
    while True:
        row = q[s]
        # act(obs, explore=True)
        if rand() < eps:
            a = int(rand() * n)
        else:
            best = max(row)
            if row.count(best) == 1:
                a = row.index(best)
            else:
                ties = [i for i, v in enumerate(row) if v == best]
                a = ties[int(rand() * len(ties))]
        action = a + start
        next_obs, reward, terminated, truncated, _ = step(action)
        # learn(obs, action, reward, next_obs, terminated, truncated)
        old = row[a]
        if terminated:
            delta = float(reward) - old
        else:
            s2 = encode(next_obs)
            row2 = q[s2]
            # Expected SARSA averages the next values under ε-greedy; Q-learning takes the max
            value = (eps * sum(row2) / n + (1.0 - eps) * max(row2)) if expected else max(row2)
            delta = float(reward) + gamma * value - old
        row[a] = old + alpha * delta
        total += reward
        if append is not None:
            # learn()'s extras {"epsilon": eps, "td_error": delta}, as two fields of the row
            ts = now()
            append((ep, t, action, reward, terminated, truncated, next_obs, eps, delta, ts))
            if ts >= deadline:
                deadline = flush()
        t += 1
        counters.steps_done += 1
        if terminated or truncated or flag.stop:
            break
        s = s2
    # what learn() leaves behind: the next act() reuses the state of a non-final step
    if terminated or truncated:
        agent._cached_obs = _NO_OBS
    else:
        agent._cached_obs, agent._cached_state = next_obs, s2
    return total, t, terminated, truncated, deadline


def _sarsa_episode(
    agent: TabularAgent,
    step: Callable[[Any], tuple[Any, Any, bool, bool, Any]],
    obs: Any,
    ep: int,
    *,
    flag: _Flag,
    counters: _Counters,
    append: Callable[[tuple[Any, ...]], None] | None,
    now: Callable[[], float],
    deadline: float,
    flush: Callable[[], float],
) -> EpisodeResult:
    """SARSA's episode: the first action from ``act`` (once an episode), then each next
    action A' drawn ε-greedily on the next state before the update, as ``learn`` does, and
    played at the next step (``act`` would return that same pending A')."""
    assert isinstance(agent, SarsaAgent)
    action = agent.act(obs, True)
    q = agent.q
    rand = agent._random
    eps = agent.epsilon
    n = agent.n_actions
    start = agent.action_start
    alpha = agent.alpha
    gamma = agent.gamma
    encode = agent._encode
    s = agent._cached_state if obs is agent._cached_obs else encode(obs)
    a = int(action) - start
    a2 = s2 = 0
    total = 0.0
    t = 0
    terminated = truncated = False
    next_obs: Any = obs
    while True:
        row = q[s]
        next_obs, reward, terminated, truncated, _ = step(action)
        old = row[a]
        if terminated:
            delta = float(reward) - old
        else:
            s2 = encode(next_obs)
            row2 = q[s2]
            # _policy(row2): the next action, before this update (as learn draws it)
            if rand() < eps:
                a2 = int(rand() * n)
            else:
                best = max(row2)
                if row2.count(best) == 1:
                    a2 = row2.index(best)
                else:
                    ties = [i for i, v in enumerate(row2) if v == best]
                    a2 = ties[int(rand() * len(ties))]
            delta = float(reward) + gamma * row2[a2] - old
        row[a] = old + alpha * delta
        total += reward
        if append is not None:
            ts = now()
            append((ep, t, action, reward, terminated, truncated, next_obs, eps, delta, ts))
            if ts >= deadline:
                deadline = flush()
        t += 1
        counters.steps_done += 1
        if terminated or truncated or flag.stop:
            break
        s, a, action = s2, a2, a2 + start
    if terminated or truncated:
        agent._pending_action = None
        agent._cached_obs = _NO_OBS
    else:  # stopped: the next act() plays the pending A' from this state
        agent._pending_action = a2 + start
        agent._cached_obs, agent._cached_state = next_obs, s2
    return total, t, terminated, truncated, deadline
