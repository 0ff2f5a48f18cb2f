"""Issue 14 item 5: the live hub lets go of a run once its ``Run`` and its dashboards are
gone, so a long-lived kernel that launches run after run keeps flat memory."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import pytest

import nbtrain
from nbtrain.live.hub import get_hub

pytestmark = pytest.mark.slow


def _launch_and_forget(db: Path, episodes: int) -> str:
    config = nbtrain.TrainConfig(env_id="FrozenLake-v1", episodes=episodes, workers=2)
    run = nbtrain.launch(config, db=db)
    dashboard = run.dashboard()
    run.wait(timeout=60)
    run_id = run.run_id
    assert get_hub().get(run_id) is not None  # held while shown
    dashboard.close()
    return run_id


def test_many_launches_leave_nothing_behind(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite"
    for _ in range(2):  # warm-up: imports, the writer, caches
        _launch_and_forget(db, 300)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        ids = [_launch_and_forget(db, 300) for _ in range(12)]
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    still = [run_id for run_id in ids if get_hub().get(run_id) is not None]
    assert still == [], f"the hub still holds {len(still)} of {len(ids)} finished runs"
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    # 12 runs x 2 workers x 300 episodes held would be well over a megabyte
    assert grown < 1_000_000, f"memory grew by {grown} bytes over 12 launches"


def test_a_run_still_referenced_keeps_its_live_state(tmp_path: Path) -> None:
    config = nbtrain.TrainConfig(env_id="FrozenLake-v1", episodes=20)
    run = nbtrain.launch(config, db=tmp_path / "x.sqlite")
    run.wait(timeout=60)
    gc.collect()
    live = get_hub().get(run.run_id)
    assert live is not None
    assert live.workers["000001"].curve.since(0)["count"].sum() == 20
