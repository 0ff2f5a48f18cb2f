"""RunDashboard on a live hub run: hello/snapshot, throttled ticker, requests, fallbacks."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from widget_events import RUN_ID, ended, episode, new_live, rgb_frame, started

from nbtrain.live.hub import RunLive, get_hub
from nbtrain.log_codes import LOG_UI_DASHBOARD_CALLBACK_ERROR
from nbtrain.widgets import RunDashboard
from nbtrain.widgets.dashboard import MIN_INTERVAL


class Recording(RunDashboard):
    """A dashboard whose outgoing messages are kept (no front-end in these tests)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.messages: list[tuple[dict[str, Any], list[bytes]]] = []
        self.cond = threading.Condition()
        super().__init__(*args, **kwargs)

    def _send_message(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        with self.cond:
            self.messages.append((content, list(buffers or [])))
            self.cond.notify_all()

    def request(self, method: str, rid: str = "r1", **params: Any) -> None:
        self._handle_custom_msg(
            {"kind": "request", "id": rid, "method": method, "params": params}, []
        )

    def wait_for(self, pred: Any, timeout: float = 5.0) -> dict[str, Any]:
        with self.cond:
            found: list[dict[str, Any]] = []

            def check() -> bool:
                found[:] = [m for m, _ in self.messages if pred(m)]
                return bool(found)

            assert self.cond.wait_for(check, timeout), f"no such message in {self.messages}"
            return found[-1]

    def kinds(self) -> list[str]:
        return [m["kind"] for m, _ in self.messages]


@pytest.fixture
def live() -> Iterator[RunLive]:
    run = get_hub().register(new_live(["000001", "000002"], episodes=50))
    yield run
    get_hub().discard(RUN_ID)


@pytest.fixture
def dash(live: RunLive, tmp_path: Path) -> Iterator[Recording]:
    widget = Recording(RUN_ID, db=tmp_path / "x.sqlite")
    yield widget
    widget.close()


def _response(dash: Recording, rid: str) -> dict[str, Any]:
    return dash.wait_for(lambda m: m.get("kind") == "response" and m["id"] == rid)


def test_nothing_is_sent_before_a_view_says_hello(dash: Recording, live: RunLive) -> None:
    live.apply(started("000001"))
    time.sleep(3 * MIN_INTERVAL)
    assert dash.messages == []
    assert not dash.ticker_alive


def test_a_request_cannot_redirect_its_answer(dash: Recording, live: RunLive) -> None:
    """Regression (widgets audit): an ``id`` inside params replaced the request's id, and a
    deferred handler answered under it: the view waited for its own id until timing out."""
    dash.request("hello", "h1", id="other")
    assert _response(dash, "h1")["ok"] is True
    assert not [m for m, _ in dash.messages if m.get("id") == "other"]


def test_hello_answers_with_a_snapshot_then_deltas_follow(dash: Recording, live: RunLive) -> None:
    live.apply_many([started("000001"), episode("000001", 0, reward=1.0)])
    dash.request("hello", "h1")
    snap = _response(dash, "h1")
    assert snap["ok"] is True
    assert snap["result"]["kind"] == "snapshot"
    assert snap["result"]["worker_ids"] == ["000001", "000002"]
    assert snap["result"]["workers"]["000001"]["curve"]["n"] == 1
    assert dash.ticker_alive
    live.apply(episode("000001", 1, reward=2.0))
    kinds = dash.kinds()
    assert kinds.index("delta") < kinds.index("response")  # other views caught up first
    delta = dash.wait_for(lambda m: m.get("kind") == "delta" and m["seq"] > snap["result"]["seq"])
    assert delta["seq"] == snap["result"]["seq"] + 1
    assert delta["workers"]["000001"]["curve"]["reset"] is False
    assert delta["workers"]["000001"]["curve"]["n"] == 1  # only the new episode's bucket


def test_ticker_sends_at_most_ten_messages_a_second(dash: Recording, live: RunLive) -> None:
    dash.request("hello", "h1")
    stop = threading.Event()

    def feed() -> None:
        i = 0
        while not stop.is_set():
            live.apply(episode("000001", i))
            i += 1
            time.sleep(0.002)

    feeder = threading.Thread(target=feed)
    start = time.monotonic()
    feeder.start()
    time.sleep(1.0)
    stop.set()
    feeder.join()
    elapsed = time.monotonic() - start
    deltas = [m for m, _ in dash.messages if m["kind"] == "delta"]
    assert len(deltas) >= 3
    assert len(deltas) <= elapsed / MIN_INTERVAL + 2
    seqs = [m["seq"] for m in deltas]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)


def test_ticker_ends_after_the_final_state_went_out(dash: Recording, live: RunLive) -> None:
    dash.request("hello", "h1")
    live.apply_many([ended("000001", episodes_done=3), ended("000002", "stopped")])
    dash.wait_for(
        lambda m: (
            m.get("kind") == "delta"
            and m["workers"].get("000002", {}).get("scalars", {}).get("status") == "stopped"
        )
    )
    assert dash._ticker is not None
    # Ended events alone do not end it: the exit codes are still to come.
    dash._ticker.join(timeout=3 * MIN_INTERVAL)
    assert dash.ticker_alive
    live.set_process("000001", status="completed", exit_code=0)
    live.set_process("000002", status="stopped", exit_code=0)
    dash.wait_for(
        lambda m: (
            m.get("kind") == "delta"
            and m["workers"].get("000002", {}).get("scalars", {}).get("exit_code") == 0
        )
    )
    dash._ticker.join(timeout=3)
    assert not dash.ticker_alive
    # Run.restart: the worker starts again and the dashboard resumes its updates.
    live.set_process("000002", status="running", pid=4242)
    assert dash.ticker_alive
    dash.wait_for(
        lambda m: (
            m.get("kind") == "delta"
            and m["workers"].get("000002", {}).get("scalars", {}).get("status") == "running"
        )
    )


def test_close_stops_the_ticker(dash: Recording, live: RunLive) -> None:
    dash.request("hello", "h1")
    assert dash.ticker_alive
    dash.close()
    assert not dash.ticker_alive
    count = len(dash.messages)
    live.apply(episode("000001", 0))
    time.sleep(3 * MIN_INTERVAL)
    assert len(dash.messages) == count


def test_a_second_view_gets_the_same_state(dash: Recording, live: RunLive) -> None:
    live.apply_many([episode("000001", i, reward=i) for i in range(4)])
    dash.request("hello", "h1")
    first = _response(dash, "h1")["result"]
    dash.request("hello", "h2")
    second = _response(dash, "h2")["result"]
    assert second["workers"]["000001"]["recent"] == first["workers"]["000001"]["recent"]
    assert second["workers"]["000001"]["curve"]["n"] == 4


def test_unknown_request_is_answered_with_an_error_and_shown(
    dash: Recording, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="nbtrain"):
        dash.request("explode", "x1")
    reply = _response(dash, "x1")
    assert reply["ok"] is False
    assert reply["error"]["type"] == "ValueError"
    assert "unknown request method 'explode'" in reply["error"]["message"]
    assert "explode" in dash.error
    assert any(getattr(r, "code", None) == LOG_UI_DASHBOARD_CALLBACK_ERROR for r in caplog.records)


def test_focus_selects_which_workers_get_rgb_frames(dash: Recording) -> None:
    dash.request("focus", "f1", view="a", worker_id="000002")
    assert _response(dash, "f1")["ok"] is True
    assert dash._tracker is not None
    assert dash._tracker.focused == {"a": "000002"}
    dash.request("focus", "f2", view="a", worker_id=None)
    assert dash._tracker.focused == {}


def test_repr_and_text_fallbacks_are_stable(dash: Recording, live: RunLive) -> None:
    live.apply_many([started("000001"), episode("000001", 0)])
    assert repr(dash) == f"RunDashboard(run_id='{RUN_ID}', workers=['000001', '000002'])"
    data, _meta = dash._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == dash.model_id
    text = data["text/plain"].splitlines()
    assert text[0] == repr(dash)
    assert text[1].split() == [
        "worker_id",
        "status",
        "exit_code",
        "episodes",
        "steps",
        "mean_return",
        "last100_return",
    ]
    assert text[2].split() == ["000001", "running", "1", "0", "0.0", "0.0"]
    assert "text/html" not in data  # the table is the static twin's (fallback.py)
    assert "<td>000002</td><td>pending</td>" in dash.static_html()


def test_unknown_keyword_arguments_are_rejected(live: RunLive, tmp_path: Path) -> None:
    with pytest.raises(
        TypeError, match=r"unexpected keyword argument 'worker' \(accepted: db, run\)"
    ):
        RunDashboard(RUN_ID, db=tmp_path / "x.sqlite", worker="000001")


@pytest.mark.parametrize("run", [5, None, Path("x.sqlite")])
def test_a_run_that_is_not_a_run_or_an_id_is_a_type_error(run: object) -> None:
    """Regression: RunDashboard(5) failed with "'int' object has no attribute 'run_id'"."""
    with pytest.raises(TypeError, match=r"run must be a nbtrain\.Run or a run id, not"):
        RunDashboard(run)  # type: ignore[arg-type]


def test_a_run_that_is_neither_live_nor_stored_is_an_error(tmp_path: Path) -> None:
    from nbtrain.errors import UnknownRunError

    with pytest.raises(UnknownRunError, match="no database"):
        RunDashboard("01J00000000000000000000000", db=tmp_path / "x.sqlite")


def test_a_restart_while_the_ticker_is_ending_makes_it_look_again(
    dash: Recording, live: RunLive
) -> None:
    # Found in review: a restart landing between the ticker's "all ended" decision and its
    # exit saw a live ticker, did nothing, and the dashboard froze.
    with dash._ticker_lock:
        dash._ticker_running = True  # a ticker about to decide that everything ended
    dash._ensure_ticker()  # Run.restart lands now
    assert dash._ticker is None  # no second ticker...
    assert dash._ticker_may_end() is False  # ...but the running one goes round again
    assert dash._ticker_may_end() is True  # nothing new after that: it may end
    dash._ensure_ticker()  # the next restart starts a fresh ticker
    assert dash.ticker_alive


def test_a_failing_start_listener_does_not_stop_a_worker_start(
    live: RunLive, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def wake(self) -> None:
            raise RuntimeError("listener broke")

    broken = Broken()
    live.on_worker_start(broken.wake)
    live.set_process("000001", status="running", pid=7)
    assert live.workers["000001"].pid == 7
    assert "LOG_UI_DASHBOARD_CALLBACK_ERROR" in caplog.text
    assert "listener broke" in caplog.text


def test_a_run_another_process_writes_keeps_its_views_up_to_date(tmp_path: Path) -> None:
    """Regression (widgets audit): a dashboard of a run live in another kernel sent one
    snapshot and never updated ("running" forever, Stop enabled). Now the views are
    nudged (a delta leaving a gap: they resync) whenever that process commits, until the
    run has ended."""
    from tests.kit.kernel import Kernel

    db = tmp_path / "other.sqlite"
    kernel = Kernel(db, episodes=60, workers=1, delay=0.002)
    try:
        dash = Recording(kernel.run_id, db=db)
        dash.request("hello", "h1")
        first = _response(dash, "h1")["result"]["workers"]["000001"]["scalars"]
        assert first["status"] in ("pending", "running")
        nudge = dash.wait_for(lambda m: m.get("kind") == "delta", timeout=10)
        assert nudge["seq"] == 2  # a gap after a store snapshot's 0: the view resyncs
        assert nudge["workers"] == {}
        assert '"000001": "completed"' in kernel.rest(timeout=60)
        # the run ended: one more nudge, then the watcher stops
        deadline = time.monotonic() + 10
        while dash._watcher.alive and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not dash._watcher.alive
        dash.request("hello", "h2")
        last = _response(dash, "h2")["result"]["workers"]["000001"]["scalars"]
        assert last["status"] == "completed"
        assert last["episodes_done"] == 60
        dash.close()
    finally:
        kernel.kill()


def _settle(live: RunLive) -> None:
    """Every worker ended and its exit code known: the ticker may end."""
    for wid in live.worker_ids:
        live.apply(ended(wid, episodes_done=live.workers[wid].episodes_done))
        live.set_process(wid, status="completed", exit_code=0)


def test_the_ticker_ends_when_a_worker_s_returns_are_nan(dash: Recording, live: RunLive) -> None:
    """Regression (widgets audit): NaN != NaN made every tick a delta, so the ticker of a
    run whose returns were NaN never ended (ten messages a second, for ever)."""
    dash.request("hello", "h1")
    live.apply_many([started("000001"), episode("000001", 0, reward=float("nan"))])
    _settle(live)
    assert dash._ticker is not None
    dash._ticker.join(timeout=3)
    assert not dash.ticker_alive
    for content, _ in dash.messages:
        json.dumps(content, allow_nan=False)


def test_showing_a_worker_after_the_run_ended_sends_its_rgb_frame(
    dash: Recording, live: RunLive
) -> None:
    """Regression (widgets audit): rgb frames go only to a shown worker, and selecting its
    tab did not wake a ticker that had ended: the tab showed no frame, ever."""
    live.apply_many([started("000001"), rgb_frame("000001", 0, 3)])
    _settle(live)
    dash.request("hello", "h1")
    _response(dash, "h1")
    assert dash._ticker is not None
    dash._ticker.join(timeout=3)
    assert not dash.ticker_alive
    dash.request("focus", "f1", view="a", worker_id="000001")
    delta = dash.wait_for(
        lambda m: m.get("kind") == "delta" and "frame" in m["workers"].get("000001", {})
    )
    assert delta["workers"]["000001"]["frame"]["kind"] == "rgb_array"


def test_the_snapshot_says_which_frames_the_run_records(live: RunLive, tmp_path: Path) -> None:
    """So that a worker tab can say "no frame yet" rather than "set telemetry frames"."""
    from tests.kit.runs import add_run, make_db

    db = make_db(tmp_path / "x.sqlite")
    add_run(db, run_id=RUN_ID, workers=2, episodes=0)
    with sqlite3.connect(db) as con:
        con.execute(
            "UPDATE runs SET config = ?", (json.dumps({"telemetry": {"frames": "rgb_array"}}),)
        )
    con.close()
    widget = Recording(RUN_ID, db=db)
    try:
        widget.request("hello", "h1")
        assert _response(widget, "h1")["result"]["frames"] == "rgb_array"
    finally:
        widget.close()


def test_without_a_stored_config_the_frames_setting_is_unknown(dash: Recording) -> None:
    dash.request("hello", "h1")
    assert _response(dash, "h1")["result"]["frames"] is None
