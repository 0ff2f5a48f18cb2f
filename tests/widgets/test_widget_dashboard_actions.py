"""A finished run's dashboard: Evaluate policies (the eval run's dashboard below it), and
Keep / Archive / Delete behind the confirm step; on real runs, counted with plain sqlite3."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nbtrain
from nbtrain.errors import RunError
from nbtrain.widgets import RunDashboard

pytestmark = pytest.mark.slow


class Recording(RunDashboard):
    """A dashboard whose answers to the view are kept (no front-end here)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.messages: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        super().__init__(*args, **kwargs)

    def _send_message(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        with self.cond:
            self.messages.append(content)
            self.cond.notify_all()

    def ask(self, method: str, rid: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        self._handle_custom_msg(
            {"kind": "request", "id": rid, "method": method, "params": params}, []
        )
        with self.cond:
            assert self.cond.wait_for(
                lambda: any(m.get("id") == rid for m in self.messages), timeout
            ), f"no answer to {method}"
            return next(m for m in self.messages if m.get("id") == rid)


def _finished(tmp_path: Path, agent: str = "q_learning", workers: int = 2) -> nbtrain.Run:
    config = nbtrain.TrainConfig(
        env_id="FrozenLake-v1", agent=agent, episodes=20, workers=workers, seed=3
    )
    run = nbtrain.launch(config, db=tmp_path / "x.sqlite")
    assert set(run.wait(timeout=60).values()) == {"completed"}
    return run


def _rows(db: Path, run_id: str) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {
            table: conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            for table in ("runs", "workers", "episodes")
        }


def test_evaluate_from_the_view_starts_the_eval_run_and_shows_its_dashboard(
    tmp_path: Path,
) -> None:
    run = _finished(tmp_path)
    dash = Recording(run)
    answer = dash.ask("evaluate", "e1", episodes="7")
    assert answer["ok"], answer
    eval_id = answer["result"]["run_id"]
    assert isinstance(dash.eval_dashboard, RunDashboard)
    assert dash.eval_dashboard.run_id == eval_id != run.run_id
    evaluation = nbtrain.Run.open(eval_id, db=run.db)
    assert evaluation.wait(timeout=60) == {"000001": "completed", "000002": "completed"}
    assert evaluation.config().mode == "eval"
    assert list(evaluation.summary()["episodes"]) == [7, 7]
    # a second evaluation replaces the first one's dashboard (and closes it)
    first = dash.eval_dashboard
    second = dash.evaluate(episodes=3)
    assert dash.eval_dashboard.run_id == second.run_id
    assert first.comm is None  # closed
    second.wait(timeout=60)
    dash.close()
    assert dash.eval_dashboard.comm is None  # closing the dashboard closes the one below


def test_evaluate_without_a_saved_policy_is_shown_under_the_widget(tmp_path: Path) -> None:
    run = _finished(tmp_path, agent="random", workers=1)
    dash = Recording(run)
    answer = dash.ask("evaluate", "e1", episodes="5")
    assert not answer["ok"]
    assert answer["error"]["type"] == "RunError"
    assert "has no saved policy" in answer["error"]["message"]
    assert dash.error.startswith("evaluate: RunError: worker '000001' of run ")
    assert dash.eval_dashboard is None
    dash.close()


def test_evaluate_refuses_bad_episodes_and_a_run_that_still_goes(tmp_path: Path) -> None:
    run = _finished(tmp_path, workers=1)
    dash = Recording(run)
    answer = dash.ask("evaluate", "e1", episodes="ten")
    assert answer["error"]["message"] == "episodes: 'ten' is not an integer"
    with pytest.raises(ValueError, match="episodes must be a positive integer, not 0"):
        dash.evaluate(episodes=0)
    dash.close()
    config = nbtrain.TrainConfig(env_id="FrozenLake-v1", episodes=100_000, step_delay=0.001)
    going = nbtrain.launch(config, db=tmp_path / "x.sqlite")
    live = Recording(going)
    try:
        with pytest.raises(RunError, match="still has workers going"):
            live.evaluate(episodes=5)
        answer = live.ask("delete", "d1")
        assert answer["error"]["type"] == "RunError"
        assert _rows(going.db, going.run_id)["workers"] == 1  # nothing deleted
    finally:
        going.stop()
        live.close()


def test_keep_changes_nothing(tmp_path: Path) -> None:
    run = _finished(tmp_path, workers=1)
    before = _rows(run.db, run.run_id)
    dash = Recording(run)
    assert dash.ask("keep", "k1")["ok"]
    assert dash.closure == "kept"
    assert _rows(run.db, run.run_id) == before
    dash.close()


def test_the_confirm_step_shows_the_per_worker_summary(tmp_path: Path) -> None:
    run = _finished(tmp_path)
    dash = Recording(run)
    info = dash.ask("summary", "s1")["result"]
    assert info["run_id"] == run.run_id
    assert info["live"] is False
    assert [(w["worker_id"], w["status"], w["episodes"]) for w in info["workers"]] == [
        ("000001", "completed", 20),
        ("000002", "completed", 20),
    ]
    assert info["folder_bytes"] > 0
    dash.close()


def test_delete_from_the_closure_summary_removes_every_row(tmp_path: Path) -> None:
    run = _finished(tmp_path)
    assert _rows(run.db, run.run_id) == {"runs": 1, "workers": 2, "episodes": 40}
    dash = Recording(run)
    answer = dash.ask("delete", "d1")
    assert answer["ok"], answer
    assert answer["result"]["counts"]["episodes"] == 40
    assert _rows(run.db, run.run_id) == {"runs": 0, "workers": 0, "episodes": 0}
    assert dash.closure.startswith("deleted: ")
    assert "40 episodes" in dash.closure
    dash.close()


def test_archive_from_the_closure_summary_moves_the_run(tmp_path: Path) -> None:
    run = _finished(tmp_path)
    dash = Recording(run)
    assert dash.archive_to == str(tmp_path / "x-archive.sqlite")
    answer = dash.ask("archive", "a1", to="old/runs.sqlite")
    assert not answer["ok"]  # its folder does not exist: the run stays whole
    assert dash.error.startswith("archive: ")
    assert _rows(run.db, run.run_id)["episodes"] == 40
    answer = dash.ask("archive", "a2", to="kept.sqlite")
    assert answer["ok"], answer
    target = tmp_path / "kept.sqlite"
    assert dash.archive_to == str(target)
    assert _rows(run.db, run.run_id) == {"runs": 0, "workers": 0, "episodes": 0}
    assert _rows(target, run.run_id) == {"runs": 1, "workers": 2, "episodes": 40}
    assert nbtrain.Run.open(run.run_id, db=target).status() == {
        "000001": "completed",
        "000002": "completed",
    }
    assert dash.closure.startswith(f"archived to {target}: ")
    dash.close()


def test_a_summary_cell_json_cannot_carry_is_none() -> None:
    """Regression (widgets audit): ``plain`` caught NaN but passed ±inf on, which reached
    the confirm step's table as the string "inf"."""
    from nbtrain.widgets.retention import plain

    for value in (float("nan"), float("inf"), np.float32("-inf")):
        assert plain(value) is None
    assert plain(2.0) == 2
    assert plain(np.float64(0.123456)) == 0.1235
