"""Real wire events built for tests (``nbtrain.wire.events``), with fixed times."""

from __future__ import annotations

from typing import Any

from nbtrain.ids import format_episode_id
from nbtrain.wire.events import Episode, Progress, Steps

T0 = 1_700_000_000.0


def steps(
    run_id: str,
    worker_id: str,
    ep_index: int,
    n: int,
    *,
    start: int = 0,
    obs: Any = None,
    extras: bool = True,
    reward: float = 0.0,
) -> Steps:
    idx = list(range(start, start + n))
    return Steps(
        run_id=run_id,
        worker_id=worker_id,
        ep_index=[ep_index] * n,
        step_index=idx,
        action=[i % 4 for i in idx],
        reward=[reward] * n,
        terminated=[i == start + n - 1 for i in idx],
        truncated=[False] * n,
        obs=[i if obs is None else obs(i) for i in idx],
        extras=[{"epsilon": 0.5, "i": i} if extras else None for i in idx],
        ts=[T0 + ep_index + i / 1000 for i in idx],
    )


def episode(
    run_id: str,
    worker_id: str,
    ep_index: int,
    *,
    total_reward: float = 1.0,
    length: int = 3,
    terminated: bool = True,
) -> Episode:
    return Episode(
        run_id=run_id,
        worker_id=worker_id,
        ep_index=ep_index,
        episode_id=format_episode_id(run_id, ep_index, worker_id),
        total_reward=total_reward,
        length=length,
        terminated=terminated,
        truncated=not terminated,
        seed=100 + ep_index,
        started_at=T0 + ep_index,
        ended_at=T0 + ep_index + 0.5,
        extras={"epsilon": 0.1},
    )


def full_episode(run_id: str, worker_id: str, ep_index: int, n: int = 3, **kw: Any) -> list[Any]:
    return [
        steps(run_id, worker_id, ep_index, n),
        episode(run_id, worker_id, ep_index, length=n, **kw),
    ]


def progress(run_id: str = "01J00000000000000000000000", worker_id: str = "000001") -> Progress:
    """A ``Progress`` event at the start of a worker's run."""
    return Progress(
        run_id=run_id,
        worker_id=worker_id,
        ts=1.0,
        episodes_done=0,
        steps_done=0,
        steps_per_s=0.0,
        ep_index=0,
    )
