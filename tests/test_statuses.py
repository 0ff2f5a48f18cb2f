"""A run's status follows from its workers' statuses."""

from __future__ import annotations

import pytest

from nbtrain.statuses import FINAL_STATUSES, LIVE_STATUSES, WORKER_STATUSES, run_status_of


@pytest.mark.parametrize(
    ("workers", "run"),
    [
        (["completed", "running"], "running"),
        (["pending", "failed"], "running"),
        (["completed", "stopped", "failed"], "failed"),
        (["completed", "stopped"], "stopped"),
        (["completed"], "completed"),
        ([], "completed"),
    ],
)
def test_run_status_of(workers: list[str], run: str) -> None:
    assert run_status_of(workers) == run


def test_live_and_final_split_the_statuses() -> None:
    assert LIVE_STATUSES.isdisjoint(FINAL_STATUSES)
    assert LIVE_STATUSES | FINAL_STATUSES == WORKER_STATUSES
