"""A whole training episode of a built-in tabular agent (Q-learning, Expected SARSA, SARSA)
in one call.

The worker's generic loop calls ``agent.act`` and ``agent.learn`` at every step; for a
FrozenLake step of ~6 us, those two calls, their attribute lookups and the extras dict that
``learn`` returns were ~8 % of a run against the bare loop a user would write
(``benchmarks/vs_bare.py``). Here the same ε-greedy choice and the same update are written
inline, with what does not change during a run gathered once: the same random draws in
the same order, the same Q-values, the same step rows. An episode that ends is also ended
for the agent (``end_episode``'s ε decay, inline). ``tests/agents/test_tabular_fused.py``
holds this to the methods it replaces, step by step.

Used by the worker for training episodes of an agent whose type is exactly one of the
built-in tabular agents (a subclass may override ``act`` or ``learn``) on discrete
observations and actions, with every step or none recorded, no frames and no
``step_delay``. Given a ``limit``, ``step`` is the layer below gymnasium's ``TimeLimit`` and
the episode truncates at the limit itself, as that wrapper would
(:func:`nbtrain.worker.envchain.time_limit_bypass`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from nbtrain.agents.tabular import (
    _NO_OBS,
    ExpectedSarsaAgent,
    QLearningAgent,
    SarsaAgent,
)

__all__ = ["EpisodeFn", "EpisodeResult", "fused_episode"]

EpisodeResult = tuple[float, int, bool, bool, float, float | None]
"""``(total_reward, length, terminated, truncated, flush_deadline, epsilon)``: an episode
that ended is also ended for the agent, and ``epsilon`` is the ε its ``end_episode()``
would return as ``{"epsilon": ε}`` (no dict an episode); one stopped midway returns None
there."""

EpisodeFn = Callable[[Any, int, float], EpisodeResult]
"""``episode(obs, ep_index, flush_deadline)``"""

Step = Callable[[Any], tuple[Any, Any, bool, bool, Any]]


class _Flag(Protocol):
    stop: bool


class _Counters(Protocol):
    steps_done: int


def fused_episode(
    agent: object,
    step: Step,
    flag: _Flag,
    counters: _Counters,
    append: Callable[[tuple[Any, ...]], None] | None,
    now: Callable[[], float],
    flush: Callable[[], float],
    limit: int | None = None,
) -> EpisodeFn | None:
    """The one-call episode for ``agent`` playing with ``step``, or None where the generic
    loop must run. Every step is recorded with ``append``, or none if it is None; ``flush``
    is called when a step's ``now()`` passes the deadline, and returns the next one.
    ``limit``: truncate once the episode has taken that many steps (``TimeLimit``'s rule).

    What does not change during a run (the Q-table object, the hyperparameters, the
    callables) is read once here, not at every episode."""
    if type(agent) is QLearningAgent or type(agent) is ExpectedSarsaAgent:
        run: Callable[..., EpisodeResult] = _episode
    elif type(agent) is SarsaAgent:
        run = _sarsa_episode
    else:
        return None
    ctx = (
        agent, step, flag, counters, append, now, flush, agent.q, agent._random,
        agent.n_actions, agent.action_start, agent.alpha, agent.gamma, agent._encode,
        type(agent) is ExpectedSarsaAgent, agent.epsilon_min, agent.epsilon_decay,
        sys.maxsize if limit is None else limit - 1,
    )  # fmt: skip
    return partial(run, ctx)


_Context = tuple[Any, ...]


def _episode(ctx: _Context, obs: Any, ep: int, deadline: float) -> EpisodeResult:
    """Play and learn one episode from ``obs`` (explore on), recording each step with
    ``append`` as a ``TdStepRow`` (``flush`` when a step passes ``deadline``): the generic
    loop's row with learn()'s extras dict as its two values.

    Stops after the step during which ``flag.stop`` was set, as the generic loop does."""
    (agent, step, flag, counters, append, now, flush, q, rand, n, start, alpha, gamma,
     encode, expected, eps_min, eps_decay, last) = ctx  # fmt: skip
    eps = agent.epsilon
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
        if t >= last:  # the limit's step (TimeLimit's, when step is the layer below it)
            truncated = True
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
        counters.steps_done += 1  # per step: heartbeats report long episodes as they go
        if terminated or truncated or flag.stop:
            break
        s = s2
    if terminated or truncated:
        # end_episode(): decay ε, forget the cached state
        agent.epsilon = eps = max(eps_min, eps * eps_decay)
        agent._cached_obs = _NO_OBS
        return total, t, terminated, truncated, deadline, eps
    # stopped: what learn() leaves behind, the next act() reuses the state of this step
    agent._cached_obs, agent._cached_state = next_obs, s2
    return total, t, terminated, truncated, deadline, None


def _sarsa_episode(ctx: _Context, obs: Any, ep: int, deadline: float) -> EpisodeResult:
    """SARSA's episode: the first action from ``act`` (once an episode), then each next
    action A' drawn ε-greedily on the next state before the update, as ``learn`` does, and
    played at the next step (``act`` would return that same pending A')."""
    (agent, step, flag, counters, append, now, flush, q, rand, n, start, alpha, gamma,
     encode, _, eps_min, eps_decay, last) = ctx  # fmt: skip
    action = agent.act(obs, True)
    eps = agent.epsilon
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
        if t >= last:
            truncated = True
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
        counters.steps_done += 1  # per step: heartbeats report long episodes as they go
        if terminated or truncated or flag.stop:
            break
        s, a, action = s2, a2, a2 + start
    if terminated or truncated:
        # end_episode(): decay ε, forget the cached state and the pending action
        agent.epsilon = eps = max(eps_min, eps * eps_decay)
        agent._pending_action = None
        agent._cached_obs = _NO_OBS
        return total, t, terminated, truncated, deadline, eps
    # stopped: the next act() plays the pending A' from this state
    agent._pending_action = a2 + start
    agent._cached_obs, agent._cached_state = next_obs, s2
    return total, t, terminated, truncated, deadline, None
