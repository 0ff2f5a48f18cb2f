"""TrainForm's Launch with real runs: the outcome line, and a second launch while the first
still goes (stop it, or run both and keep both dashboards)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from nbtrain.widgets import RunDashboard, TrainForm
from nbtrain.widgets.outcome import outcome_text

pytestmark = pytest.mark.slow
HELPERS = str(Path(__file__).resolve().parents[1] / "helpers")


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_the_line_next_to_launch_turns_into_the_outcome(tmp_path: Path) -> None:
    form = TrainForm(db=tmp_path / "x.sqlite", env_id="FrozenLake-v1", episodes=20, workers=2)
    run = form.launch()
    assert form.core.run_status == f"launched run {run.run_id} (000001, 000002) · running…"
    run.wait(timeout=60)
    _wait_for(lambda: " · completed in " in form.core.run_status)
    assert form.core.run_status.startswith(f"launched run {run.run_id} (000001, 000002) · ")
    assert form.core.running_runs == []
    # Regression (QA): the live line counted from each worker's first episode to its last
    # event ("completed in 0.0 s") while the database counts from spawn to reap: one run,
    # two durations. Both now say the same.
    stored = run.store.workers(run.run_id)
    took = stored["ended_at"].max() - stored["started_at"].min()
    expected = outcome_text([{"status": "completed", "started_at": 0.0,
                              "ended_at": took.total_seconds()}])  # fmt: skip
    assert form.core.run_status.endswith(f" · {expected}")
    form.close()


def test_the_line_says_how_many_failed_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(HELPERS)
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", HELPERS + (os.pathsep + old if old else ""))
    form = TrainForm(
        db=tmp_path / "x.sqlite",
        env_id="FrozenLake-v1",
        episodes=5,
        workers=3,
        agent="pipeline_agents:Raises",
    )
    assert form.valid, form.errors
    run = form.launch()
    run.wait(timeout=60)
    _wait_for(lambda: "failed" in form.core.run_status)
    assert form.core.run_status.endswith(" · 3 failed: RuntimeError: agent exploded on purpose")
    form.close()


def test_launch_while_running_keeps_both_dashboards_or_stops_the_first(tmp_path: Path) -> None:
    form = TrainForm(
        db=tmp_path / "x.sqlite", env_id="FrozenLake-v1", episodes=100_000, step_delay=0.001
    )
    first = form.launch()
    _wait_for(lambda: first.status()["000001"] == "running")
    assert [r["run_id"] for r in form.core.running_runs] == [first.run_id]
    second = form.launch(previous="keep")
    shown = [c.run_id for c in form.children[1:] if isinstance(c, RunDashboard)]
    assert shown == [second.run_id, first.run_id]  # each live run keeps its Stop
    assert first.status()["000001"] == "running"
    third = form.launch(previous="stop")
    assert first.status()["000001"] == "stopped"
    assert second.status()["000001"] == "stopped"
    shown = [c.run_id for c in form.children[1:] if isinstance(c, RunDashboard)]
    assert shown == [third.run_id]
    third.stop()
    with pytest.raises(ValueError, match="previous must be"):
        form.launch(previous="replace")
    form.close()


def test_a_saved_notebook_gets_a_static_twin_with_the_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A form displays its widget and then a plain HTML twin; the twin is replaced (by
    display id) with the run's summary when the run ends."""
    from nbtrain.widgets import fallback

    published: list[tuple[str, str, str]] = []

    def record(kind: str):  # type: ignore[no-untyped-def]
        def fn(obj: object, **kw: object) -> None:
            data = obj if isinstance(obj, dict) else {}
            published.append((kind, str(kw.get("display_id", "")), str(data.get("text/html", ""))))

        return fn

    monkeypatch.setattr("IPython.display.display", record("display"))
    monkeypatch.setattr("IPython.display.update_display", record("update"))
    form = TrainForm(db=tmp_path / "x.sqlite", env_id="FrozenLake-v1", episodes=10, workers=2)
    form._ipython_display_()
    assert published[0][0] == "display"  # the widget itself
    kind, twin_id, html = published[1]
    assert (kind, twin_id.startswith("nbtrain-static-")) == ("display", True)
    assert f"class='{fallback.TWIN_CLASS}'" in html
    run = form.launch()
    run.wait(timeout=60)
    _wait_for(lambda: " · completed" in form.core.run_status)
    updates = [p for p in published if p[0] == "update" and p[1] == twin_id]
    assert updates
    assert f"Run {run.run_id} · completed" in updates[-1][2]
    assert "<td>000002</td><td>completed</td><td>0</td><td>10</td>" in updates[-1][2]
    form.close()
