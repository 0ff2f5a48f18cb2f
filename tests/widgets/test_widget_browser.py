"""RunBrowser on the kernel side: the page it sends, sorting and paging, selection (one run:
its dashboard; several: overlaid curves), the confirm-then-delete requests, the poll thread,
and 1,000 runs sending one page."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import traitlets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from tests.kit.runs import TABLES, add_run, counts, expected, make_db

import nbtrain
from nbtrain.errors import UnknownRunError
from nbtrain.store.compare import compare_band
from nbtrain.widgets import RunBrowser, RunDashboard
from nbtrain.widgets.browser import RunTable
from nbtrain.widgets.browser_data import RunIndex

STATIC = Path(nbtrain.__file__).resolve().parent / "static"


class Responses:
    """Records what the table sends its views (the widget has no front-end here)."""

    def __init__(self, table: RunTable) -> None:
        self.sent: list[dict[str, Any]] = []
        self.event = threading.Event()

        def record(content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
            self.sent.append(content)
            self.event.set()

        table._send_message = record  # type: ignore[method-assign]

    def wait(self, request_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.sent:
                if msg.get("id") == request_id:
                    return msg
            self.event.wait(0.05)
            self.event.clear()
        raise AssertionError(f"no response to {request_id}: {self.sent}")


def request(table: RunTable, method: str, **params: Any) -> str:
    request_id = f"t-{method}-{time.monotonic_ns()}"
    table._on_custom_msg(
        table, {"kind": "request", "id": request_id, "method": method, "params": params}, []
    )
    return request_id


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "b.sqlite")


@pytest.fixture
def browsers() -> Iterator[list[RunBrowser]]:
    made: list[RunBrowser] = []
    yield made
    for b in made:
        b.close()


def open_browser(made: list[RunBrowser], db: Path, **kwargs: Any) -> RunBrowser:
    browser = RunBrowser(db=db, **kwargs)
    made.append(browser)
    return browser


def test_exported_and_bundled() -> None:
    assert nbtrain.RunBrowser is RunBrowser
    assert "RunBrowser" in nbtrain.__all__
    # bundles as traits, not paths: anywidget keeps a widget given a path alive
    traits = RunTable.class_traits()
    assert traits["_esm"].default_value == (STATIC / "browser.js").read_text()
    assert traits["_css"].default_value == (STATIC / "browser.css").read_text()


def test_the_page_holds_every_column(db: Path, browsers: list[RunBrowser]) -> None:
    a = add_run(db, workers=3, episodes=4, steps=5, name="alpha", created_at=1_700_000_000.0)
    b = add_run(db, workers=1, episodes=2, name="beta", created_at=1_700_000_100.0)
    browser = open_browser(browsers, db)
    table = browser.table
    assert table.total == 2
    assert [r["run_id"] for r in table.rows] == [b, a]  # newest first
    first = table.rows[1]
    assert first["name"] == "alpha"
    assert first["created"] == "2023-11-14 22:13:20"
    assert first["status"] == "completed"
    assert first["workers"] == [
        ["000001", "completed"],
        ["000002", "completed"],
        ["000003", "completed"],
    ]
    assert first["episodes"] == 12
    assert first["steps"] == 60  # environment steps: the sum of episode lengths
    assert first["size"] > 0
    assert repr(browser) == f"RunBrowser(db={str(db)!r}, runs=2)"


def test_sort_and_page(db: Path, browsers: list[RunBrowser]) -> None:
    ids = [add_run(db, workers=1, episodes=1 + i, name=f"r{i:02d}") for i in range(7)]
    browser = open_browser(browsers, db, page_size=3)
    table = browser.table
    table.sort = "episodes"
    assert [r["run_id"] for r in table.rows] == ids[::-1][:3]
    table.descending = False
    assert [r["run_id"] for r in table.rows] == ids[:3]
    table.page = 2
    assert [r["run_id"] for r in table.rows] == ids[6:]
    table.sort = "name"
    assert [r["name"] for r in table.rows] == ["r06"]
    with pytest.raises(traitlets.TraitError, match="cannot sort by 'nope'"):
        table.sort = "nope"
    with pytest.raises(traitlets.TraitError, match=r"page_size must be 1\.\.500"):
        table.page_size = 0


def test_selecting_one_run_opens_its_dashboard_several_overlay(
    db: Path, browsers: list[RunBrowser]
) -> None:
    a = add_run(db, workers=3, episodes=5, reward=lambda w, ep: int(w) + ep)
    b = add_run(db, workers=2, episodes=3)
    browser = open_browser(browsers, db)
    browser.select(a)
    dash = browser.dashboard
    assert isinstance(dash, RunDashboard)
    assert dash.run_id == a
    assert browser.detail.children == (dash,)
    assert browser.table.overlay == {}

    browser.table.selected = [a, b]  # as the view's checkboxes set it
    assert browser.dashboard is None
    assert browser.detail.children == ()
    assert dash.comm is None  # the old dashboard was closed
    runs = browser.table.overlay["runs"]
    assert [r["run_id"] for r in runs] == [a, b]
    band = compare_band(browser._index.store._reader, [a])
    assert runs[0]["ep"] == [0, 1, 2, 3, 4]
    assert runs[0]["mean"] == pytest.approx(band["mean"].tolist())
    assert runs[0]["hi"][1] == pytest.approx(band["mean"][1] + band["sd"][1])
    assert runs[0]["workers"] == 3
    assert runs[1]["lo"] == runs[1]["mean"]  # its two workers have equal returns: sd 0

    browser.select([])
    assert browser.table.overlay == {}

    # Regression (QA): an id that is no run was selected silently (and nothing opened).
    with pytest.raises(UnknownRunError, match="no run 'nope' in"):
        browser.select([a, "nope"])
    assert list(browser.table.selected) == []
    c = add_run(db, workers=1, episodes=2)  # made after the browser's last look
    browser.select(c)
    assert browser.dashboard is not None
    assert browser.dashboard.run_id == c


def test_confirm_then_delete_through_the_request_protocol(
    db: Path, browsers: list[RunBrowser]
) -> None:
    gone = add_run(db, workers=2, episodes=3, folder_bytes=100)
    kept = add_run(db)
    browser = open_browser(browsers, db)
    sent = Responses(browser.table)
    browser.select(gone)

    reply = sent.wait(request(browser.table, "summary", run_id=gone))
    assert reply["ok"] is True
    summary = reply["result"]
    assert [w["worker_id"] for w in summary["workers"]] == ["000001", "000002"]
    assert summary["workers"][0]["episodes"] == 3
    assert summary["live"] is False
    assert summary["folder_bytes"] > 100
    assert counts(db, gone) == expected(2, 3)  # asking deletes nothing

    reply = sent.wait(request(browser.table, "delete", run_id=gone))
    assert reply["ok"] is True, reply
    assert reply["result"]["counts"] == expected(2, 3)
    assert counts(db, gone) == dict.fromkeys(TABLES, 0)
    assert counts(db, kept) == expected(2, 3)
    assert [r["run_id"] for r in browser.table.rows] == [kept]
    assert browser.selected == []
    assert browser.dashboard is None


def test_archive_request_and_a_refused_one_is_shown(
    db: Path, tmp_path: Path, browsers: list[RunBrowser]
) -> None:
    run_id = add_run(db)
    browser = open_browser(browsers, db)
    assert browser.table.archive_to == str(tmp_path / "b-archive.sqlite")
    sent = Responses(browser.table)
    reply = sent.wait(request(browser.table, "archive", run_id=run_id, to="cold.sqlite"))
    assert reply["ok"] is True, reply
    assert counts(tmp_path / "cold.sqlite", run_id) == expected(2, 3)
    assert browser.table.total == 0

    reply = sent.wait(request(browser.table, "delete", run_id=run_id))
    assert reply["ok"] is False
    assert reply["error"]["type"] == "UnknownRunError"
    assert "delete: UnknownRunError" in browser.table.error


def test_the_poll_thread_shows_new_and_removed_runs(db: Path, browsers: list[RunBrowser]) -> None:
    first = add_run(db)
    browser = open_browser(browsers, db, poll_interval=0.05)
    assert browser.table.total == 1
    second = add_run(db)  # another connection commits: data_version moves

    def wait_for(predicate: Any, what: str) -> None:
        deadline = time.monotonic() + 20
        while not predicate():
            assert time.monotonic() < deadline, what
            time.sleep(0.02)

    wait_for(lambda: browser.table.total == 2, "the new run to show")
    assert {r["run_id"] for r in browser.table.rows} == {first, second}
    browser.select(first)
    assert browser.dashboard is not None
    nbtrain.TelemetryStore(db).delete_run(first)  # elsewhere, not through the browser
    wait_for(lambda: browser.table.total == 1, "the deleted run to go")
    wait_for(lambda: browser.selected == [], "the deleted run to leave the selection")
    assert browser.dashboard is None
    browser.close()
    assert not browser._poller.is_alive()


def test_unchanged_database_is_not_queried_again(db: Path, browsers: list[RunBrowser]) -> None:
    for _ in range(5):
        add_run(db)
    index = RunIndex(db)
    index.page("created", True, 0, 25)
    queries = index.aggregate_queries
    for _ in range(3):
        index.page("size", True, 0, 25)  # finished runs: their aggregates are cached
    assert index.aggregate_queries == queries
    index.close()


def test_a_thousand_runs_send_one_page(db: Path, browsers: list[RunBrowser]) -> None:
    import sqlite3

    con = sqlite3.connect(db)
    with con:
        for i in range(1000):
            run_id = nbtrain.new_run_id()
            con.execute(
                "INSERT INTO runs(run_id, name, created_at, digest, config, status) "
                "VALUES (?, ?, ?, 'd', '{}', 'completed')",
                (run_id, f"run{i:04d}", 1_700_000_000.0 + i),
            )
            for w in ("000001", "000002"):
                con.execute(
                    "INSERT INTO workers(run_id, worker_id, status) VALUES (?, ?, 'completed')",
                    (run_id, w),
                )
                con.execute(
                    "INSERT INTO episodes(run_id, worker_id, ep_index, episode_id, total_reward, "
                    "length) VALUES (?, ?, 0, ?, 1.0, 3)",
                    (run_id, w, nbtrain.format_episode_id(run_id, 0, w)),
                )
    con.close()
    browser = open_browser(browsers, db, page_size=50)
    table = browser.table
    assert table.total == 1000
    assert len(table.rows) == 50  # one page travels to the view, never all runs
    assert table.rows[0]["name"] == "run0999"
    queries = browser._index.aggregate_queries
    assert queries <= 2 * (1000 // 500 + 1)  # grouped SQL, not a query per run
    table.page = 19
    assert len(table.rows) == 50
    assert table.rows[-1]["name"] == "run0000"
    table.sort = "size"
    assert len(table.rows) == 50
    assert browser._index.aggregate_queries == queries  # paging and sorting reuse the cache


def test_bad_arguments(db: Path) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'pagesize'"):
        RunBrowser(db=db, pagesize=3)
    with pytest.raises(ValueError, match="poll_interval must be > 0"):
        RunBrowser(db=db, poll_interval=0)
    with pytest.raises(nbtrain.StoreError, match="is a folder"):
        RunBrowser(db=db.parent)


@pytest.mark.slow
def test_a_live_run_is_refreshed_while_it_goes_and_when_it_ends(
    tmp_path: Path, browsers: list[RunBrowser]
) -> None:
    db = tmp_path / "live.sqlite"
    run = nbtrain.launch(
        {"env_id": "FrozenLake-v1", "episodes": 150, "step_delay": 0.003, "workers": 2}, db=db
    )
    try:
        browser = open_browser(browsers, db, poll_interval=0.1)

        def row() -> dict[str, Any]:
            rows = browser.table.rows
            return rows[0] if rows else {}

        def wait_for(predicate: Any, what: str, timeout: float = 60) -> Any:
            deadline = time.monotonic() + timeout
            while not (value := predicate()):
                assert time.monotonic() < deadline, f"{what}; last row {row()}"
                time.sleep(0.05)
            return value

        seen = wait_for(lambda: row().get("live") and row()["episodes"] > 0 and row()["episodes"],
                        "episodes of the live run")  # fmt: skip
        assert row()["status"] == "running"
        wait_for(lambda: row()["episodes"] > seen, "the episode count to rise")
        run.wait(timeout=120)
        wait_for(lambda: row()["status"] == "completed", "the run to show completed")
        wait_for(lambda: row()["episodes"] == 300, "the final count")
        assert row()["workers"] == [["000001", "completed"], ["000002", "completed"]]
        assert row()["live"] is False
    finally:
        run.stop()


def test_a_closed_browser_is_freed(db: Path) -> None:
    """Regression (widgets audit): RunTable gave anywidget its bundle as a path, and every
    RunBrowser ever made stayed alive (with its index and store)."""
    import gc
    import weakref

    add_run(db)
    browser = RunBrowser(db=db)
    refs = [weakref.ref(browser), weakref.ref(browser.table)]
    browser.close()
    del browser
    gc.collect()
    assert [r() for r in refs] == [None, None]


def test_a_mistyped_database_path_is_an_error_not_a_new_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(nbtrain.UnknownRunError, match="no database at"):
        RunBrowser(db=missing)
    assert not missing.exists()
    with pytest.raises(TypeError, match=r"'page_sise'; did you mean 'page_size'\?"):
        RunBrowser(db=missing, page_sise=10)  # type: ignore[call-arg]
