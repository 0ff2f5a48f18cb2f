"""The single writer: ordering, flush, failures, resume, concurrency with other processes."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from tests.kit.events import episode, full_episode, steps
from tests.kit.processes import wait_for

from nbtrain.errors import StoreError
from nbtrain.ids import new_run_id
from nbtrain.log_codes import LOG_SERVICE_SQLITE_BUSY_RETRY, LOG_SERVICE_SQLITE_WRITE_FAILED
from nbtrain.store import schema, writer_queue
from nbtrain.store.writer import StoreWriter, acquire_writer
from nbtrain.store.writer_queue import STEADY_AFTER_S, STEADY_ROWS, commit_deadline
from nbtrain.wire.events import Progress

SRC = str(Path(__file__).resolve().parents[2] / "src")


class Blocker:
    """Holds the write lock from another process (a real competing writer).

    It must be another process: POSIX locks never conflict within one process.
    """

    def __init__(self, db: Path) -> None:
        script = (
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "c.execute('COMMIT')\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == b"locked"

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()
        assert self.proc.wait(30) == 0


def count(db: Path, sql: str, *params: object) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql, params).fetchone()[0])
    finally:
        conn.close()


def new_run(w: StoreWriter) -> str:
    run = new_run_id()
    w.create_run(run_id=run, name="t", created_at=time.time(), digest="abc", config={"k": [1]})
    return run


def test_create_run_is_committed_on_return(writer: StoreWriter, db: Path) -> None:
    run = new_run(writer)
    conn = sqlite3.connect(db)
    row = conn.execute("SELECT name, digest, config, status FROM runs WHERE run_id = ?", (run,))
    assert row.fetchone() == ("t", "abc", '{"k":[1]}', "running")


def test_duplicate_run_is_an_error(writer: StoreWriter) -> None:
    run = new_run(writer)
    with pytest.raises(StoreError, match=run):
        writer.create_run(run_id=run, name="x", created_at=0.0, digest="", config={})


def test_queued_ops_keep_order_and_flush_commits(writer: StoreWriter, db: Path) -> None:
    run = new_run(writer)
    writer.upsert_worker(run, 7, status="running", pid=42, started_at=1.0)
    writer.add_events([*full_episode(run, "000007", 0), Progress(
        run_id=run, worker_id="000007", ts=1.0, episodes_done=1, steps_done=3, steps_per_s=1.0,
        ep_index=0)])  # fmt: skip
    writer.upsert_worker(run, "w7", status="completed", exit_code=0, ended_at=2.0)
    writer.set_run_status(run, "completed")
    writer.flush(timeout=10)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status, pid, exit_code FROM workers").fetchall() == [
        ("completed", 42, 0)
    ]
    assert conn.execute("SELECT status FROM runs").fetchone() == ("completed",)
    assert count(db, "SELECT COUNT(*) FROM steps WHERE worker_id = '000007'") == 3
    assert count(db, "SELECT COUNT(*) FROM episodes") == 1
    assert writer.failed_writes == 0
    assert writer.rows_written >= 3 + 1 + 4
    assert writer.commits >= 1


def test_array_obs_and_no_extras_are_stored_as_json(writer: StoreWriter, db: Path) -> None:
    run = new_run(writer)
    writer.add_events([steps(run, "000001", 0, 2, obs=lambda i: [i, 0.5], extras=False)])
    writer.flush()
    rows = sqlite3.connect(db).execute("SELECT obs, typeof(action), extras FROM steps").fetchall()
    assert rows == [("[0,0.5]", "integer", "{}"), ("[1,0.5]", "integer", "{}")]


def test_failed_rows_are_logged_counted_and_others_kept(
    writer: StoreWriter, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = new_run(writer)
    writer.add_events([steps(run, "000001", 0, 5)])
    writer.flush()
    caplog.set_level(logging.WARNING, logger="nbtrain")
    bad_lengths = msgspec.structs.replace(steps(run, "000001", 9, 3), reward=[0.0])
    writer.add_events(
        [
            steps(run, "000001", 0, 2, start=4),  # step 4 exists: 1 duplicate, step 5 is new
            episode(run, "000001", 0, length=6),
            episode(run, "000001", 0),  # duplicate episode key
            bad_lengths,
            *full_episode(run, "000002", 0),
        ]
    )
    writer.set_run_status(new_run_id(), "completed")  # unknown run
    writer.flush()
    assert writer.failed_writes == 1 + 1 + 3 + 1
    codes = [getattr(r, "code", None) for r in caplog.records]
    assert codes.count(LOG_SERVICE_SQLITE_WRITE_FAILED) >= 4
    assert count(db, "SELECT COUNT(*) FROM steps WHERE worker_id = '000001'") == 6
    assert count(db, "SELECT COUNT(*) FROM steps WHERE worker_id = '000002'") == 3
    assert count(db, "SELECT COUNT(*) FROM episodes") == 2
    writer.add_events(full_episode(run, "000003", 0))  # the writer goes on
    writer.flush()
    assert count(db, "SELECT COUNT(*) FROM episodes") == 3


def test_discard_unfinished_steps(writer: StoreWriter, db: Path) -> None:
    run = new_run(writer)
    writer.add_events(
        [
            *full_episode(run, "000001", 0),
            *full_episode(run, "000001", 1),
            steps(run, "000001", 2, 4),  # never finished
            steps(run, "000002", 0, 2),  # worker 2 never finished an episode
            *full_episode(run, "000003", 0),
        ]
    )
    assert writer.discard_unfinished_steps(run, 1) == 2
    assert writer.discard_unfinished_steps(run, "000002") == 0
    assert writer.discard_unfinished_steps(run, "w3") == 1
    assert writer.discard_unfinished_steps(run, 4) == 0
    q = "SELECT COUNT(*) FROM steps WHERE worker_id = ?"
    assert [count(db, q, w) for w in ("000001", "000002", "000003")] == [6, 0, 3]
    # resuming at the returned index never collides
    writer.add_events(full_episode(run, "000001", 2))
    writer.flush()
    assert writer.failed_writes == 0


def test_invalid_arguments_are_rejected_before_queueing(writer: StoreWriter) -> None:
    run = new_run(writer)
    with pytest.raises(ValueError, match="stdout_tail"):
        writer.upsert_worker(run, 1, stdout_tail="x")
    with pytest.raises(ValueError, match="'done'"):
        writer.upsert_worker(run, 1, status="done")
    with pytest.raises(ValueError, match="'finished'"):
        writer.set_run_status(run, "finished")
    with pytest.raises(ValueError, match="gpu-a"):
        writer.upsert_worker(run, "gpu-a", status="running")


def test_one_writer_per_file_refcounted(db: Path) -> None:
    a = acquire_writer(db)
    b = acquire_writer(Path(os.path.relpath(db)))
    assert a is b
    a.release()
    new_run(b)  # still open
    b.release()
    with pytest.raises(StoreError, match="released more often"):
        b.release()
    c = acquire_writer(db)
    assert c is not a
    c.release()


def test_flush_times_out_while_another_process_holds_the_lock(
    writer: StoreWriter, db: Path
) -> None:
    run = new_run(writer)
    blocker = Blocker(db)
    try:
        writer.add_events(full_episode(run, "000001", 0))
        with pytest.raises(TimeoutError):
            writer.flush(timeout=0.2)
    finally:
        blocker.release()
    writer.flush(timeout=10)
    assert count(db, "SELECT COUNT(*) FROM steps") == 3


def test_busy_writer_retries_and_never_fails(
    db: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(schema, "BUSY_TIMEOUT_MS", 50)
    caplog.set_level(logging.WARNING, logger="nbtrain")
    w = acquire_writer(db)
    try:
        run = new_run(w)
        blocker = Blocker(db)
        w.add_events(full_episode(run, "000001", 0))
        w.upsert_worker(run, 1, status="running")
        time.sleep(0.5)
        blocker.release()
        w.flush(timeout=10)
    finally:
        w.release()
    assert w.busy_retries > 0
    assert w.failed_writes == 0
    assert LOG_SERVICE_SQLITE_BUSY_RETRY in [getattr(r, "code", None) for r in caplog.records]
    assert count(db, "SELECT COUNT(*) FROM steps") == 3


def test_backpressure_blocks_submitters(db: Path) -> None:
    w = acquire_writer(db)
    w.max_pending_rows = 10
    try:
        run = new_run(w)
        blocker = Blocker(db)
        w.add_events([steps(run, "000001", 0, 50)])  # the writer takes this and blocks
        time.sleep(0.3)
        w.add_events([steps(run, "000001", 1, 50)])  # now pending: 50 > 10
        submitter = threading.Thread(target=w.add_events, args=([steps(run, "000001", 2, 5)],))
        submitter.start()
        submitter.join(0.3)
        assert submitter.is_alive()
        blocker.release()
        submitter.join(10)
        assert not submitter.is_alive()
        w.flush(timeout=10)
    finally:
        w.release()
    assert count(db, "SELECT COUNT(*) FROM steps") == 105


def test_backpressure_wakes_the_writer_before_its_commit_interval(db: Path) -> None:
    # Regression: with the bound below a full batch, the writer lingered for its whole
    # commit interval while the submitter it was holding back waited.
    w = acquire_writer(db)
    w.commit_interval, w.max_pending_rows, w.max_batch_rows = 60.0, 10, 1000
    try:
        run = new_run(w)
        w.add_events([steps(run, "000001", 0, 5)])  # the writer lingers: 5 rows <= 10
        w.add_events([steps(run, "000001", 1, 50)])  # pending 55 > 10: it must write now
        submitter = threading.Thread(target=w.add_events, args=([steps(run, "000001", 2, 5)],))
        submitter.start()
        submitter.join(30)  # half the commit interval
        assert not submitter.is_alive()
        w.flush(timeout=10)
    finally:
        w.release()
    assert count(db, "SELECT COUNT(*) FROM steps") == 60


def test_a_workers_first_episodes_are_committed_without_the_linger(db: Path) -> None:
    """A new run's first stored episode (issue 13): a worker's first episodes, and what was
    queued before them, skip the commit linger; its later ones wait for it as before."""
    w = acquire_writer(db)
    w.commit_interval = 60.0  # no commit from the linger during this test

    def episodes() -> int:
        return count(db, "SELECT COUNT(*) FROM episodes")

    try:
        run = new_run(w)
        w.add_events([steps(run, "000001", 0, 4)])  # steps alone linger
        w.add_events([episode(run, "000001", 0, length=4)])
        wait_for(lambda: episodes() == 1, timeout=30, what="the first episode")  # half the linger
        assert count(db, "SELECT COUNT(*) FROM steps") == 4  # with its steps, queued before

        w.add_events(full_episode(run, "000001", 1))  # no longer the worker's first
        time.sleep(0.5)
        assert episodes() == 1

        w.add_events(full_episode(run, "000002", 0))  # another worker's first: both go in
        wait_for(lambda: episodes() == 3, timeout=30, what="worker 000002's first episode")
        w.add_events(full_episode(run, "000002", 1) + full_episode(run, "000003", 0))
        wait_for(lambda: episodes() == 5, timeout=30, what="a batch with one new worker")
        w.flush(timeout=10)
    finally:
        w.release()
    assert count(db, "SELECT COUNT(*) FROM steps") == 4 + 4 * 3


def test_commits_are_visible_to_another_process_without_flush(
    writer: StoreWriter, db: Path
) -> None:
    run = new_run(writer)
    writer.add_events(full_episode(run, "000001", 0, n=25))
    script = textwrap.dedent(
        f"""
        import sqlite3, sys, time
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            conn = sqlite3.connect({str(db)!r})
            n = conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
            conn.close()
            if n == 25:
                sys.exit(0)
            time.sleep(0.05)
        sys.exit(1)
        """
    )
    assert subprocess.run([sys.executable, "-c", script], timeout=30).returncode == 0


WRITER_SCRIPT = """
import sys, time
sys.path.insert(0, {testdir!r})
from tests.kit.events import steps, episode
from nbtrain.ids import new_run_id
from nbtrain.store.writer import acquire_writer
w = acquire_writer({db!r})
run = new_run_id()
w.create_run(run_id=run, name="p", created_at=time.time(), digest="", config={{}})
for ep in range(40):
    w.add_events([steps(run, "000001", ep, 500), episode(run, "000001", ep, length=500)])
    time.sleep(0.005)
w.flush()
assert w.failed_writes == 0, w.stats()
w.release()
print(run)
"""


@pytest.mark.slow
def test_two_processes_write_one_file_at_once(db: Path) -> None:
    acquire_writer(db).release()  # create the schema first
    script = WRITER_SCRIPT.format(testdir=str(Path(__file__).parent), db=str(db))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].decode().strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    for run in outs:
        assert count(db, "SELECT COUNT(*) FROM steps WHERE run_id = ?", run) == 40 * 500
        assert count(db, "SELECT COUNT(*) FROM episodes WHERE run_id = ?", run) == 40


def test_wal_is_truncated_by_checkpoint(writer: StoreWriter, db: Path) -> None:
    run = new_run(writer)
    for ep in range(20):
        writer.add_events(full_episode(run, "000001", ep, n=500))
    writer.flush()
    wal = Path(f"{db}-wal")
    assert wal.stat().st_size > 0
    writer.checkpoint()
    assert wal.stat().st_size == 0
    assert count(db, "SELECT COUNT(*) FROM steps") == 20 * 500


def test_the_wal_is_folded_into_the_file_every_few_megabytes(writer: StoreWriter, db: Path) -> None:
    """Regression: SQLite's default of 1,000 pages meant a 64 MB WAL with nbtrain's 64 KiB
    pages, never folded during a short run and all copied at its end while wait() waited."""
    run = new_run(writer)
    ep = 0
    for _ in range(20):  # 20 commits of 40 500-step episodes: ~26 MB of step JSON
        for _ in range(40):
            writer.add_events(full_episode(run, "000001", ep, n=500))
            ep += 1
        writer.flush()
    wal = Path(f"{db}-wal")
    assert db.stat().st_size > 16_000_000, "the WAL was not checkpointed during the writes"
    assert wal.stat().st_size < 30_000_000
    assert count(db, "SELECT COUNT(*) FROM steps") == ep * 500


@pytest.mark.parametrize(("page_size", "pages"), [(4096, 1000), (16384, 1000), (65536, 256)])
def test_the_checkpoint_interval_is_in_bytes_not_pages(page_size: int, pages: int) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute(f"PRAGMA page_size = {page_size}")
    schema.set_wal_autocheckpoint(conn)
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == pages
    conn.close()


def test_reads_in_the_writing_process_see_whole_batches(writer: StoreWriter, db: Path) -> None:
    """Readers and the writer share one process: reads stay consistent while it writes."""
    from nbtrain.store import TelemetryStore

    run = new_run(writer)
    writer.upsert_worker(run, 1, status="running")
    writer.flush()
    store = TelemetryStore(db)
    seen = []
    for ep in range(30):
        writer.add_events([steps(run, "000001", ep, 200)])
        n = len(store.steps(run, 1, columns=["step_index"]))
        assert n % 200 == 0
        seen.append(n)
    writer.flush()
    assert len(store.steps(run, 1)) == 30 * 200
    assert seen == sorted(seen)


def test_reading_while_writing_from_another_thread(writer: StoreWriter, db: Path) -> None:
    """A reader thread polls steps() while events stream in: always whole, ordered chunks."""
    from nbtrain.store import TelemetryStore

    run = new_run(writer)
    writer.upsert_worker(run, 1, status="running")
    writer.flush()
    store = TelemetryStore(db)
    done = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not done.is_set():
                df = store.steps(run, 1, columns=["ep_index", "step_index"])
                pairs = list(zip(df["ep_index"], df["step_index"], strict=True))
                assert pairs == sorted(pairs)
                assert len(df) % 100 == 0
                seen.append(len(df))
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for ep in range(60):
        writer.add_events([steps(run, "000001", ep, 100)])
        time.sleep(0.002)
    writer.flush()
    done.set()
    reader.join(10)
    assert not errors
    assert seen == sorted(seen)
    assert len(store.steps(run, 1)) == 60 * 100


def test_pre_launch_check_waits_for_another_writer(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbtrain.store import ensure_writable

    ensure_writable(db)
    monkeypatch.setattr(schema, "BUSY_TIMEOUT_MS", 50)
    blocker = Blocker(db)
    errors: list[BaseException] = []

    def check() -> None:
        try:
            ensure_writable(db)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=check)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive()  # waiting for the lock, not failing
    blocker.release()
    thread.join(30)
    assert not thread.is_alive()
    assert errors == []


def test_commit_deadline_spaces_commits_only_after_a_large_batch() -> None:
    never = -float("inf")
    assert commit_deadline(10.0, never, 0.1, 0.3) == pytest.approx(10.1)  # first rows
    assert commit_deadline(10.0, 9.95, 0.1, 0.3) == pytest.approx(10.25)  # streaming
    assert commit_deadline(10.0, 5.0, 0.1, 0.3) == pytest.approx(10.1)  # after a pause


def test_commits_are_spaced_only_once_large_batches_have_gone_on(db: Path) -> None:
    """A run's first large batch (its first steps) is not followed by a spaced commit: its
    first episodes may come in the next read, and are stored as soon as before."""
    w = acquire_writer(db)
    try:
        never = -float("inf")
        w._wrote(STEADY_ROWS, 100.0)
        assert w._committed == never  # the first large write: no spacing yet
        w._wrote(STEADY_ROWS, 100.0 + STEADY_AFTER_S / 2)
        assert w._committed == never
        w._wrote(STEADY_ROWS, 100.0 + STEADY_AFTER_S)
        assert w._committed == 100.0 + STEADY_AFTER_S  # a steady stream: spaced
        w._wrote(STEADY_ROWS - 1, 102.0 + STEADY_AFTER_S)
        assert w._committed == never  # a small write ends the stream
        w._wrote(STEADY_ROWS, 103.0 + STEADY_AFTER_S)
        assert w._committed == never  # and the next large one starts a new one
    finally:
        w.release()


def test_a_heavy_stream_is_committed_every_steady_interval(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of STEADY_ROWS rows or more, once they have gone on for STEADY_AFTER_S, space
    the next commit by steady_interval (each commit rewrites the partly filled last pages);
    small ones leave the pace alone."""
    monkeypatch.setattr(writer_queue, "STEADY_AFTER_S", 0.2)
    w = acquire_writer(db)
    w.commit_interval, w.steady_interval = 0.1, 0.3
    try:
        run = new_run(w)
        w.add_events([steps(run, "000001", 0, 5)])
        w.flush(timeout=10)
        assert w._committed == -float("inf")  # a small batch: no spacing
        started, ep, before = time.monotonic(), 1, w.commits
        while time.monotonic() - started < 2.0:
            w.add_events([steps(run, "000001", ep, STEADY_ROWS // 4)])
            ep += 1
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        commits = w.commits - before
        w.flush(timeout=10)
        assert w._committed > started
        # one commit every 0.1 s without the spacing: 20 or so here
        assert commits <= 0.2 / 0.1 + (elapsed - 0.2) / 0.3 + 3, (commits, elapsed)
    finally:
        w.release()
    assert count(db, "SELECT COUNT(*) FROM steps") == 5 + (ep - 1) * (STEADY_ROWS // 4)


def test_acknowledgements_come_after_the_commit_once_per_listener(db: Path) -> None:
    """What tells a worker its episodes are stored (the ``stored`` control frame): called
    only once the rows are committed (another connection sees them), with the largest
    count of the batch, once per listener."""
    w = acquire_writer(db)
    w.commit_interval = 60.0  # everything below goes in one batch, at the flush
    told: list[tuple[str, int, int]] = []

    def listener(name: str) -> Callable[[int], None]:
        def tell(n: int) -> None:
            told.append((name, n, count(db, "SELECT COUNT(*) FROM episodes")))

        return tell

    a, b = listener("a"), listener("b")
    try:
        run = new_run(w)
        # a worker's first episodes skip the linger: get them out of the way
        w.add_events(full_episode(run, "000001", 0) + full_episode(run, "000002", 0))
        w.flush(timeout=10)
        for tell, wid, ep in [(a, "000001", 1), (b, "000002", 1), (a, "000001", 2)]:
            op = w.prepare_events(full_episode(run, wid, ep))
            assert op is not None
            op.acknowledge = (tell, ep + 1)
            w.submit(op)
        time.sleep(0.2)
        assert told == []  # queued, not committed
        w.flush(timeout=10)
    finally:
        w.release()
    assert sorted(told) == [("a", 3, 5), ("b", 2, 5)]
