"""Write failures are loud and lose nothing committed (fail-stop writer).

Faults are made for real: a full 3 MB tmpfs (when the test may mount one), ``RLIMIT_FSIZE``
in a child process (writes past it fail with EFBIG), the database file removed or replaced.
After each: the failure is reported (property, listener, every later call raises at once),
nothing hangs, no thread died silently, and every stored episode has all its steps.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.kit.events import full_episode, steps
from tests.kit.truth import whole_episodes

from nbtrain.errors import StoreError, StoreWriteError
from nbtrain.ids import new_run_id
from nbtrain.store import TelemetryStore
from nbtrain.store.batch import BatchWriter
from nbtrain.store.writer import StoreWriter, acquire_writer

SRC = str(Path(__file__).resolve().parents[2] / "src")
TESTS = str(Path(__file__).resolve().parent)


def new_run(w: StoreWriter) -> str:
    run = new_run_id()
    w.create_run(run_id=run, name="t", created_at=time.time(), digest="", config={})
    return run


class Watch:
    """Failure listener calls and uncaught thread exceptions, for the checks after a fault."""

    def __init__(self, writer: StoreWriter, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[StoreWriteError, str]] = []
        self.uncaught: list[BaseException | None] = []
        monkeypatch.setattr(threading, "excepthook", lambda a: self.uncaught.append(a.exc_value))
        writer.add_failure_listener(
            lambda e: self.calls.append((e, threading.current_thread().name))
        )

    def check(self, writer: StoreWriter) -> StoreWriteError:
        failure = writer.failure
        assert isinstance(failure, StoreWriteError)
        assert str(writer.path) in str(failure)
        assert "\n" not in str(failure)
        writer._thread.join(5)  # it ends after telling the listeners
        assert not writer._thread.is_alive()
        assert self.calls == [(failure, writer._thread.name)]  # once, from the writer thread
        assert self.uncaught == []
        return failure


def every_call_raises_at_once(writer: StoreWriter, run: str) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: writer.add_events(full_episode(run, "000001", 10**6)),
        lambda: writer.flush(timeout=30),
        lambda: writer.call(lambda c: None),
        lambda: writer.call(lambda c: None, wait=False),
        lambda: writer.upsert_worker(run, 1, status="failed"),
        lambda: writer.create_run(
            run_id=new_run_id(), name="", created_at=0.0, digest="", config={}
        ),
        lambda: writer.discard_unfinished_steps(run, 1),
    ]
    for call in calls:
        start = time.monotonic()
        with pytest.raises(StoreWriteError, match=str(writer.path)):
            call()
        assert time.monotonic() - start < 5


def write_until_failure(writer: StoreWriter, run: str, limit: float = 60.0) -> int:
    """Two workers' episodes of varying length until the writer fails; returns episodes sent."""
    deadline = time.monotonic() + limit
    ep = 0
    try:
        while writer.failure is None and time.monotonic() < deadline:
            for wid in ("000001", "000002"):
                writer.add_events(full_episode(run, wid, ep, n=50 + (ep * 37) % 200))
            ep += 1
            time.sleep(0.005)  # several commits before the disk fills
    except StoreWriteError:
        pass
    fail_by = time.monotonic() + 5
    while writer.failure is None and time.monotonic() < fail_by:
        time.sleep(0.01)
    assert writer.failure is not None, f"no failure after {ep} episodes"
    return ep


@pytest.fixture
def full_disk() -> Iterator[Path]:
    """A real 3 MB tmpfs (root only; skipped where mounting is not permitted)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the RLIMIT_FSIZE test covers this case)")
    folder = Path(tempfile.mkdtemp(prefix="nbtrain-full-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"mount not permitted: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        folder.rmdir()


@pytest.mark.timeout(120)
def test_full_disk(full_disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = full_disk / "db.sqlite"
    w = acquire_writer(db)
    watch = Watch(w, monkeypatch)
    try:
        run = new_run(w)
        w.upsert_worker(run, 1, status="running")
        sent = write_until_failure(w, run)
        failure = watch.check(w)
        assert "full" in str(failure) or "I/O" in str(failure), failure
        every_call_raises_at_once(w, run)
    finally:
        w.release()
    stored = whole_episodes(db)
    assert 0 < stored < 2 * sent


CHILD = """
import json, resource, sys, threading, time
sys.path.insert(0, {tests!r})
from tests.kit.events import full_episode
from nbtrain.errors import StoreWriteError
from nbtrain.ids import new_run_id
from nbtrain.store.writer import acquire_writer

uncaught, calls = [], []
threading.excepthook = lambda a: uncaught.append(repr(a.exc_value))
w = acquire_writer({db!r})
w.add_failure_listener(lambda e: calls.append(threading.current_thread().name))
run = new_run_id()
w.create_run(run_id=run, name="", created_at=time.time(), digest="", config={{}})
w.flush()
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.RLIM_INFINITY))
deadline = time.monotonic() + 60
ep = 0
try:
    while w.failure is None and time.monotonic() < deadline:
        for wid in ("000001", "000002"):
            w.add_events(full_episode(run, wid, ep, n=50 + (ep * 37) % 200))
        ep += 1
        time.sleep(0.005)
except StoreWriteError:
    pass
while w.failure is None and time.monotonic() < deadline + 5:
    time.sleep(0.01)
later = []
for call in (lambda: w.add_events(full_episode(run, "000001", 10**6)), lambda: w.flush(30),
             lambda: w.call(lambda c: None)):
    start = time.monotonic()
    try:
        call()
        later.append(None)
    except StoreWriteError as exc:
        later.append([type(exc).__name__, round(time.monotonic() - start, 3)])
w._thread.join(5)
alive = w._thread.is_alive()
w.release()
print(json.dumps({{"failure": str(w.failure), "calls": calls, "thread": w._thread.name,
                  "later": later, "alive": alive, "uncaught": uncaught, "sent": ep}}))
"""


@pytest.mark.timeout(120)
def test_file_size_limit_in_a_child_process(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    script = CHILD.format(tests=TESTS, db=str(db), limit=2 * 1024 * 1024)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SRC}, timeout=100)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert str(db) in out["failure"], out
    assert out["calls"] == [out["thread"]]
    assert [x and x[0] for x in out["later"]] == ["StoreWriteError"] * 3
    assert all(x[1] < 5 for x in out["later"])
    assert not out["alive"]
    assert out["uncaught"] == []
    stored = whole_episodes(db)
    assert 0 < stored < 2 * out["sent"]


def test_removed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "db.sqlite"
    w = acquire_writer(db)
    watch = Watch(w, monkeypatch)
    try:
        run = new_run(w)
        for ep in range(5):
            w.add_events(full_episode(run, "000001", ep))
        w.flush()
        os.unlink(db)
        w.add_events(full_episode(run, "000001", 5))
        with pytest.raises(StoreWriteError, match="was removed"):
            w.flush(timeout=30)
        watch.check(w)
        every_call_raises_at_once(w, run)
    finally:
        w.release()
    again = acquire_writer(db)  # a new file, a new writer
    try:
        assert again is not w
        new_run(again)
    finally:
        again.release()
    assert len(TelemetryStore(db).runs()) == 1


def test_replaced_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, other = tmp_path / "db.sqlite", tmp_path / "other.sqlite"
    w = acquire_writer(db)
    acquire_writer(other).release()
    watch = Watch(w, monkeypatch)
    try:
        run = new_run(w)
        os.replace(other, db)
        w.add_events(full_episode(run, "000001", 0))
        with pytest.raises(StoreWriteError, match="replaced"):
            w.flush(timeout=30)
        watch.check(w)
    finally:
        w.release()


def test_a_dying_writer_thread_fails_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any exception in the writer thread (here a bug in its file check) is a failure."""
    db = tmp_path / "db.sqlite"
    w = acquire_writer(db)
    watch = Watch(w, monkeypatch)
    try:
        run = new_run(w)
        monkeypatch.setattr(BatchWriter, "check_file", lambda self: 1 / 0)
        w.add_events(full_episode(run, "000001", 0))
        with pytest.raises(StoreWriteError, match="ZeroDivisionError"):
            w.flush(timeout=30)
        failure = watch.check(w)
        assert isinstance(failure.__cause__, ZeroDivisionError)
    finally:
        w.release()


def test_waiters_for_room_and_results_wake_on_failure(tmp_path: Path) -> None:
    """A submitter blocked by backpressure and a caller waiting for a result both get the
    error when the writer fails (here: a call that ends the writer thread)."""
    db = tmp_path / "db.sqlite"
    w = acquire_writer(db)
    w.max_pending_rows = 10
    started, gate = threading.Event(), threading.Event()

    def stuck(conn: sqlite3.Connection) -> None:
        started.set()
        gate.wait(30)
        raise SystemExit("the writer thread ends")

    errors: dict[str, BaseException] = {}

    def attempt(name: str, fn: Callable[[], Any]) -> threading.Thread:
        def target() -> None:
            try:
                fn()
            except BaseException as exc:
                errors[name] = exc

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    try:
        run = new_run(w)
        w.call(stuck, wait=False)
        assert started.wait(10)
        w.add_events([steps(run, "000001", 0, 50)])  # 50 rows pending > 10
        blocked = attempt("submit", lambda: w.add_events([steps(run, "000001", 1, 5)]))
        waiting = attempt("result", lambda: w.call(lambda c: 1))
        blocked.join(0.3)
        assert blocked.is_alive()
        gate.set()
        for thread in (blocked, waiting):
            thread.join(5)
            assert not thread.is_alive()
        assert isinstance(errors["submit"], StoreWriteError)
        assert isinstance(errors["result"], StoreWriteError)
        assert "SystemExit" in str(w.failure)
    finally:
        gate.set()
        w.release()


def test_listeners(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "db.sqlite"
    w = acquire_writer(db)
    seen: list[str] = []

    def bad(error: StoreWriteError) -> None:
        raise RuntimeError("listener bug")

    w.add_failure_listener(bad)
    w.add_failure_listener(lambda e: seen.append("second"))
    try:
        new_run(w)
        os.unlink(db)
        with pytest.raises(StoreWriteError):
            w.flush(timeout=30)
        assert seen == ["second"]  # a raising listener does not stop the others
        assert "failure listener raised" in caplog.text
        w.add_failure_listener(lambda e: seen.append("late"))  # already failed: called now
        assert seen == ["second", "late"]
    finally:
        w.release()


def test_bad_rows_are_not_storage_failures(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    w = acquire_writer(db)
    try:
        run = new_run(w)
        w.add_events(full_episode(run, "000001", 0))
        w.add_events(full_episode(run, "000001", 0))  # duplicate rows: skipped, counted
        with pytest.raises(StoreError, match="cannot create run"):
            w.create_run(run_id=run, name="", created_at=0.0, digest="", config={})
        w.add_events(full_episode(run, "000001", 1))
        w.flush(timeout=30)
        assert w.failure is None
        assert w.failed_writes > 0
    finally:
        w.release()
    assert whole_episodes(db) == 2
