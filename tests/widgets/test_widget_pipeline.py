"""The widgets on real runs: real worker processes, real SQLite, the live hub."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nbtrain
from nbtrain.errors import UnknownRunError
from nbtrain.live.hub import get_hub
from nbtrain.widgets import EpisodeViewer, RunDashboard, TrainForm
from nbtrain.widgets.dashboard_data import WIRE_FIELDS, LiveTracker, Packet
from nbtrain.widgets.dashboard_store import store_snapshot

pytestmark = pytest.mark.slow


class Recording(RunDashboard):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.messages: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        super().__init__(*args, **kwargs)

    def _send_message(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        with self.cond:
            self.messages.append(content)
            self.cond.notify_all()

    def ask(self, method: str, rid: str, timeout: float = 20, **params: Any) -> dict[str, Any]:
        self._handle_custom_msg(
            {"kind": "request", "id": rid, "method": method, "params": params}, []
        )
        with self.cond:
            assert self.cond.wait_for(
                lambda: any(m.get("id") == rid for m in self.messages), timeout
            ), f"no answer to {method}"
            return next(m for m in self.messages if m.get("id") == rid)


def test_form_launch_shows_the_dashboard_and_the_run_completes(tmp_path: Path) -> None:
    form = TrainForm(
        db=tmp_path / "x.sqlite", env_id="FrozenLake-v1", episodes=30, workers=[7, None]
    )
    run = form.launch()
    assert run.worker_ids == ["000007", "000001"]
    assert isinstance(form.dashboard, RunDashboard)
    assert form.dashboard.run_id == run.run_id
    assert form.core.launched_run_id == run.run_id
    assert run.wait(timeout=60) == {"000007": "completed", "000001": "completed"}
    dash = Recording(run.run_id, db=run.db)
    snap = dash.ask("hello", "h1")["result"]
    assert snap["workers"]["000007"]["scalars"]["status"] == "completed"
    assert snap["workers"]["000007"]["curve"]["n"] == 30
    dash.close()


def _curve_arrays(packet: Packet, wid: str) -> dict[str, np.ndarray]:
    ref = packet.content["workers"][wid]["curve"]
    return {
        name: np.frombuffer(packet.buffers[ref[name]["buffer"]], dtype=ref[name]["dtype"])
        for name in WIRE_FIELDS
    }


def test_live_and_stored_dashboards_draw_the_same_curve_and_it_matches_the_episodes(
    tmp_path: Path,
) -> None:
    """Issue 15: the live view and one opened from the store agree, and the last "mean of
    20" is the mean of the last 20 stored episodes."""
    config = nbtrain.TrainConfig(env_id="FrozenLake-v1", episodes=800, workers=2, seed=3)
    run = nbtrain.launch(config, db=tmp_path / "x.sqlite")
    run.wait(timeout=120)
    live = get_hub().get(run.run_id)
    assert live is not None
    tracker = LiveTracker(live)
    with live.lock:
        tracker.delta()
        from_live = tracker.snapshot()
    from_store = store_snapshot(run.db, run.run_id)
    episodes = run.episodes()
    summary = run.summary().set_index("worker_id")
    for wid in run.worker_ids:
        a, b = _curve_arrays(from_live, wid), _curve_arrays(from_store, wid)
        assert from_live.content["workers"][wid]["curve"]["level"] == 1  # 800 > 512 buckets
        for name in WIRE_FIELDS:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        mine = episodes[episodes["worker_id"] == wid].sort_values("ep_index")
        assert a["roll"][-1] == pytest.approx(mine["total_reward"].tail(20).mean(), abs=1e-9)
        assert set(np.unique(a["r_min"])) <= {0.0, 1.0}  # FrozenLake: only 0 or 1 happened
        for source in (from_live, from_store):
            scalars = source.content["workers"][wid]["scalars"]
            assert scalars["last100_return"] == pytest.approx(summary.loc[wid, "last100_return"])
            assert scalars["mean_return"] == pytest.approx(summary.loc[wid, "mean_return"])
            assert scalars["steps_per_s"] > 0  # an average, not the 0 it used to be
    assert from_live.content["outcome"].startswith("completed in ")
    assert from_store.content["outcome"].startswith("completed in ")
    assert from_live.content["colours"] == from_store.content["colours"]


def test_stop_button_stops_one_worker_of_a_live_run(tmp_path: Path) -> None:
    config = nbtrain.TrainConfig(
        env_id="FrozenLake-v1", episodes=100_000, workers=2, step_delay=0.001
    )
    run = nbtrain.launch(config, db=tmp_path / "x.sqlite")
    dash = Recording(run.run_id, db=run.db)
    try:
        assert dash.ask("hello", "h1")["ok"]
        reply = dash.ask("stop", "s1", worker_id="000002")
        assert reply["ok"], reply
        assert reply["result"]["statuses"]["000002"] == "stopped"
        assert run.status()["000001"] == "running"
        reply = dash.ask("stop", "s2", worker_id=None)
        assert set(reply["result"]["statuses"].values()) == {"stopped"}
        with dash.cond:
            assert dash.cond.wait_for(
                lambda: any(
                    m.get("kind") == "delta"
                    and m["workers"].get("000001", {}).get("scalars", {}).get("status") == "stopped"
                    for m in dash.messages
                ),
                10,
            )
    finally:
        run.stop()
        dash.close()


def test_stop_of_an_unknown_worker_is_reported(tmp_path: Path) -> None:
    config = nbtrain.TrainConfig(env_id="FrozenLake-v1", episodes=3)
    run = nbtrain.launch(config, db=tmp_path / "x.sqlite")
    run.wait(timeout=60)
    dash = Recording(run.run_id, db=run.db)
    reply = dash.ask("stop", "s1", worker_id="000009")
    assert reply["ok"] is False
    assert "000009" in reply["error"]["message"]
    assert "stop" in dash.error
    dash.close()


def test_finished_run_is_rebuilt_from_the_store(tmp_path: Path) -> None:
    config = nbtrain.TrainConfig(env_id="FrozenLake-v1", episodes=12, workers=["a", "b"])
    run = nbtrain.launch(config, db=tmp_path / "x.sqlite")
    run.wait(timeout=60)
    get_hub().discard(run.run_id)
    dash = Recording(run.run_id, db=run.db)
    assert dash.worker_ids == ["a", "b"]
    snap = dash.ask("hello", "h1")["result"]
    assert snap["live"] is False
    assert snap["env_id"] == "FrozenLake-v1"
    for wid in ("a", "b"):
        state = snap["workers"][wid]
        assert state["scalars"]["status"] == "completed"
        assert state["scalars"]["exit_code"] == 0
        assert state["curve"]["n"] == 12
        assert state["recent"]["ep_index"] == list(range(12))
    assert not dash.ticker_alive
    text = dash._repr_mimebundle_()[0]["text/plain"]
    assert "a          completed  0          12" in text
    html = dash.static_html()
    assert "<th>last100_return</th>" in html
    assert f"Run {run.run_id} · completed" in html  # how the run ended, for a saved notebook
    dash.close()


def test_episode_viewer_replays_a_stored_episode(tmp_path: Path) -> None:
    config = nbtrain.TrainConfig(env_id="FrozenLake-v1", episodes=3, workers=[7])
    run = nbtrain.launch(config, db=tmp_path / "x.sqlite")
    run.wait(timeout=60)
    steps = run.steps(worker_id=7, ep_index=2)
    viewer = EpisodeViewer(run.run_id, "w7", 2, db=run.db)
    ep = viewer.episode
    assert ep["grid"] == {"kind": "frozenlake", "rows": ["SFFF", "FHFH", "FFFH", "HFFG"]}
    assert ep["action_labels"] == ["Left", "Down", "Right", "Up"]
    assert ep["obs"] == steps["obs"].tolist()
    assert ep["cumulative"][-1] == pytest.approx(steps["reward"].sum())
    viewer.step = 10_000
    assert viewer.step == len(ep["action"])
    assert repr(viewer) == (
        f"EpisodeViewer(run_id='{run.run_id}', worker_id='000007', ep_index=2, steps={len(steps)})"
    )
    with pytest.raises(UnknownRunError, match="no stored steps for episode 99"):
        EpisodeViewer(run.run_id, 7, 99, db=run.db)
    with pytest.raises(TypeError, match="unexpected keyword argument 'step'"):
        EpisodeViewer(run.run_id, 7, 0, db=run.db, step=3)
    with pytest.raises(ValueError, match="ep_index -1"):
        EpisodeViewer(run.run_id, 7, -1, db=run.db)
    with pytest.raises(ValueError, match="ep_index '2' must be an integer"):
        EpisodeViewer(run.run_id, 7, "2", db=run.db)  # type: ignore[arg-type]
    # Regression: the index as a DataFrame holds it (numpy) was refused as "not an integer".
    last = run.episodes(worker_id=7)["ep_index"].iloc[-1]
    assert EpisodeViewer(run.run_id, 7, last, db=run.db).ep_index == 2


def test_a_dashboard_from_the_store_shows_a_failed_worker_s_traceback(tmp_path: Path) -> None:
    """Regression (widgets audit): the store snapshot (a dashboard after a kernel restart,
    from another kernel or the RunBrowser) never read workers.traceback, so a failed
    worker showed only its one-line error."""
    from tests.kit.runs import add_run, make_db

    db = make_db(tmp_path / "x.sqlite")
    run_id = add_run(db, workers=1, status="failed")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE workers SET status = 'failed', error = 'RuntimeError: boom', "
            "traceback = 'Traceback (most recent call last):\n  ...\nRuntimeError: boom'"
        )
    conn.close()
    scalars = store_snapshot(db, run_id).content["workers"]["000001"]["scalars"]
    assert scalars["error"] == "RuntimeError: boom"
    assert scalars["traceback"].startswith("Traceback (most recent call last):")


def test_the_viewer_refuses_an_episode_whose_steps_were_sampled(tmp_path: Path) -> None:
    """Regression (widgets audit): with telemetry.steps=4 a 7-step episode that returned
    1.0 replayed as 2 steps whose return was 0.0, never terminated, with no warning."""
    config = nbtrain.TrainConfig(
        env_id="FrozenLake-v1", env_kwargs={"is_slippery": False}, episodes=5,
        telemetry={"steps": 4}, max_steps_per_episode=20,
    )  # fmt: skip
    run = nbtrain.launch(config, db=tmp_path / "x.sqlite")
    run.wait(timeout=60)
    episodes = run.episodes()
    longer = episodes[episodes["length"] > 4]["ep_index"].iloc[0]
    with pytest.raises(ValueError, match=r"of its \d+ steps stored .*telemetry=\{'steps': 'all'\}"):
        EpisodeViewer(run.run_id, 1, longer, db=run.db)


def test_a_random_map_is_not_drawn_as_if_it_were_the_worker_s() -> None:
    """Regression (widgets audit): FrozenLake with map_name=None draws a new random map at
    every make(); the viewer drew one that was not the worker's."""
    from nbtrain.widgets.envinfo import grid_for_env

    assert grid_for_env("FrozenLake-v1", {"map_name": None}) is None
    fixed = grid_for_env("FrozenLake-v1", {"map_name": "4x4"})
    assert fixed is not None
    assert fixed["rows"] == ["SFFF", "FHFH", "FFFH", "HFFG"]
