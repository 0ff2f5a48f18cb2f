"""Caps on counts and the episode time limit a run resolves to.

The caps exist because every count ends up in a JSON worker file, an int64 SQLite column and
a Python ``range``; a value past them is a typo or a mistake, and catching it at validation
beats every worker dying with ``OverflowError`` after launch.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DEFAULT_STEP_LIMIT",
    "MAX_COUNT",
    "MAX_WORKERS",
    "registered_step_limit",
    "resolve_step_limit",
]

# Episodes per worker, steps per episode, checkpoint interval: a billion is years of
# training at any realistic speed and far inside int64.
MAX_COUNT = 10**9

# One run's workers are subprocesses on one machine (or Ray actors), each with two pipes and
# a live tab: 1024 is already far more than cores on any single host and keeps the file
# descriptors (about 4 per worker) under common ``ulimit -n`` values of 4096.
MAX_WORKERS = 1024

# Used only for environments registered without a time limit, so that a greedy policy that
# loops (e.g. on CliffWalking) still ends its episode.
DEFAULT_STEP_LIMIT = 1000


def registered_step_limit(spec: Any) -> int | None:
    """The ``max_episode_steps`` an env is registered with (``gym.spec(id)``), or None."""
    limit = getattr(spec, "max_episode_steps", None)
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1:
        return limit
    return None


def resolve_step_limit(configured: int | None, spec: Any) -> int:
    """An explicit limit wins; else the registered one; else :data:`DEFAULT_STEP_LIMIT`."""
    if configured is not None:
        return configured
    registered = registered_step_limit(spec)
    return DEFAULT_STEP_LIMIT if registered is None else registered
