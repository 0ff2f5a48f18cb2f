"""When a worker may be restarted: the checks ``Run.restart`` makes before it discards anything.

Shared by the owning kernel's session and by a second kernel that restarts a worker of a run
it adopted (``nbtrain.dispatch.control``), so both refuse with the same words.
"""

from __future__ import annotations

from nbtrain.errors import RunError, UnknownWorkerError

__all__ = ["check_episodes_left", "check_restartable"]


def check_restartable(run_id: str, statuses: dict[str, str], worker_id: str) -> None:
    if worker_id not in statuses:
        raise UnknownWorkerError(run_id, worker_id, statuses)
    status = statuses[worker_id]
    if status not in {"stopped", "failed"}:
        raise RunError(
            f"worker {worker_id!r} of run {run_id} is {status}; only a stopped or failed "
            "worker can be restarted"
        )


def check_episodes_left(run_id: str, worker_id: str, next_episode: int, episodes: int) -> None:
    if next_episode >= episodes:
        raise RunError(
            f"worker {worker_id!r} of run {run_id} has already recorded all {episodes} episodes"
        )
