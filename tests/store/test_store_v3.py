"""Schema 3 and the lifecycle's store API: upgrades, writer.call, worker fields, readable
runs(), run(), nearest run ids, snapshots and distrust of the file's own SQL."""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from tests.kit.events import full_episode

from nbtrain.config import TrainConfig
from nbtrain.errors import StoreError, UnknownRunError
from nbtrain.ids import new_run_id
from nbtrain.store import SCHEMA_VERSION, TelemetryStore, schema
from nbtrain.store.queries import Reader
from nbtrain.store.writer import StoreWriter, acquire_writer

V3_RUNS = ["owner_pid", "owner_start", "owner_host", "lease_at", "agent_pickle"]
V3_WORKERS = ["pid_start", "resumed_from", "backend", "stop_requested"]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "v3.sqlite"


def new_run(w: StoreWriter, config: dict[str, object] | None = None) -> str:
    run = new_run_id()
    w.create_run(run_id=run, name="t", created_at=time.time(), digest="d", config=config or {})
    return run


def columns(db: Path, table: str) -> list[str]:
    return [r[1] for r in sqlite3.connect(db).execute(f"PRAGMA table_info({table})")]


# The steps view as schemas 2 and 3 made it (one episode per chunk, rows without ep_index).
V3_VIEW = """CREATE VIEW steps AS SELECT c.run_id AS run_id, c.worker_id AS worker_id,
    c.ep_index AS ep_index, json_extract(j.value, '$[0]') AS step_index,
    json_extract(j.value, '$[1]') AS action, json_extract(j.value, '$[2]') AS reward,
    json_extract(j.value, '$[3]') AS terminated, json_extract(j.value, '$[4]') AS truncated,
    json_extract(j.value, '$[5]') AS obs, json_extract(j.value, '$[6]') AS extras,
    json_extract(j.value, '$[7]') AS ts
FROM step_chunks AS c, json_each(c.rows) AS j"""


def downgrade_to_v3(db: Path) -> None:
    """Make ``db`` what schema 3 wrote: a chunk per episode, rows without their ep_index."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    chunks = conn.execute(
        "SELECT run_id, worker_id, ep_index, last_ep, rows FROM step_chunks"
    ).fetchall()
    conn.execute("DELETE FROM step_chunks")
    conn.execute("DROP VIEW steps")
    conn.execute("ALTER TABLE step_chunks DROP COLUMN last_ep")
    for run, wid, first, last, text in chunks:
        rows = json.loads(text)
        if last is None:  # one episode already, in the old layout
            rows = [[*row, first] for row in rows]
        for ep, part in itertools.groupby(rows, key=lambda row: row[-1]):
            part = [row[:-1] for row in part]
            conn.execute(
                "INSERT INTO step_chunks VALUES (?, ?, ?, ?, ?, ?)",
                (run, wid, ep, part[0][0], len(part), json.dumps(part)),
            )
    conn.execute(V3_VIEW)
    conn.execute("PRAGMA user_version = 3")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.execute("COMMIT")
    conn.close()


def downgrade_to_v2(db: Path) -> None:
    """Make ``db`` exactly what schema 2 wrote: the same tables without the v3 columns."""
    downgrade_to_v3(db)
    conn = sqlite3.connect(db, isolation_level=None)
    for table, column in schema.V3_COLUMNS:
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column.split()[0]}")
    conn.execute("PRAGMA user_version = 2")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.close()


def populate(db: Path) -> str:
    w = acquire_writer(db)
    run = new_run(w)
    w.upsert_worker(run, 1, status="completed", pid=7, exit_code=0)
    w.add_events(full_episode(run, "000001", 0, n=4))
    w.release()
    return run


# -- upgrades ---------------------------------------------------------------------------------


def test_v2_file_is_upgraded_in_place(db: Path) -> None:
    run = populate(db)
    downgrade_to_v2(db)
    assert "owner_pid" not in columns(db, "runs")
    store = TelemetryStore(db)
    assert columns(db, "runs")[6:] == V3_RUNS
    assert columns(db, "workers")[10:] == V3_WORKERS
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (4,)
    assert dict(conn.execute("SELECT key, value FROM meta"))["schema_version"] == "4"
    workers = store.workers(run)
    assert workers[["status", "pid", "exit_code"]].values.tolist() == [["completed", 7.0, 0.0]]
    assert workers["pid_start"].isna().all()
    assert store.run(run)["owner_pid"] is None
    assert len(store.steps(run)) == 4


def test_v1_file_goes_through_every_step(db: Path) -> None:
    """Version 1 (row-per-step ``steps`` table, no v3 columns) -> chunks -> v3 columns."""
    run = populate(db)
    downgrade_to_v2(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP VIEW steps")
    conn.execute("DROP TABLE step_chunks")
    conn.execute(
        "CREATE TABLE steps (run_id TEXT NOT NULL, worker_id TEXT NOT NULL, ep_index INTEGER, "
        "step_index INTEGER, action INTEGER, reward REAL, terminated INTEGER, "
        "truncated INTEGER, obs INTEGER, extras TEXT, ts REAL, "
        "PRIMARY KEY (run_id, worker_id, ep_index, step_index))"
    )
    conn.executemany(
        "INSERT INTO steps VALUES (?, '000001', 0, ?, 1, 0.5, 0, 0, ?, '{}', 1.0)",
        [(run, i, i) for i in range(4)],
    )
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    store = TelemetryStore(db)
    assert columns(db, "workers")[10:] == V3_WORKERS
    assert store.steps(run)["obs"].tolist() == [0, 1, 2, 3]


# -- writer -----------------------------------------------------------------------------------


def test_upsert_worker_takes_the_v3_fields(db: Path) -> None:
    w = acquire_writer(db)
    try:
        run = new_run(w)
        w.upsert_worker(run, 1, status="running", pid=4242, pid_start="123456",
                        backend="local", resumed_from="checkpoint ep 99")  # fmt: skip
        w.upsert_worker(run, 1, status="completed")
        w.flush()
    finally:
        w.release()
    row = TelemetryStore(db).workers(run).iloc[0]
    assert (row["status"], row["pid"], row["pid_start"], row["backend"], row["resumed_from"]) == (
        "completed", 4242.0, "123456", "local", "checkpoint ep 99")  # fmt: skip


def test_call_runs_in_queue_order_and_returns_once_committed(db: Path) -> None:
    w = acquire_writer(db)
    try:
        run = new_run(w)
        w.add_events(full_episode(run, "000001", 0, n=5))

        def lease(conn: sqlite3.Connection) -> int:
            conn.execute(
                "UPDATE runs SET owner_pid = 99, owner_start = 's', owner_host = 'h', "
                "lease_at = 12.5 WHERE run_id = ?",
                (run,),
            )
            return int(conn.execute("SELECT SUM(n_steps) FROM step_chunks").fetchone()[0])

        assert w.call(lease, label="lease") == 5  # sees the steps queued before it
        record = TelemetryStore(db).run(run)  # committed on return
        assert [record[k] for k in V3_RUNS[:4]] == [99, "s", "h", 12.5]
    finally:
        w.release()


def test_a_failing_call_undoes_only_itself(db: Path) -> None:
    w = acquire_writer(db)
    try:
        run = new_run(w)

        def half_done(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE runs SET owner_pid = 1 WHERE run_id = ?", (run,))
            raise ValueError("changed my mind")

        w.add_events(full_episode(run, "000001", 0))
        with pytest.raises(ValueError, match="changed my mind"):
            w.call(half_done)

        def timed_out(conn: sqlite3.Connection) -> None:
            raise TimeoutError("an OSError, but not the disk's")

        with pytest.raises(TimeoutError):
            w.call(timed_out)
        before = w.failed_writes
        w.call(half_done, wait=False)  # no caller to tell: logged and counted
        w.flush()
        assert w.failed_writes == before + 1
        assert w.failure is None
        assert TelemetryStore(db).run(run)["owner_pid"] is None
        assert len(TelemetryStore(db).steps(run)) == 3
    finally:
        w.release()


# -- readable runs ----------------------------------------------------------------------------


def test_runs_has_readable_columns_from_the_config(db: Path) -> None:
    cfg = TrainConfig(env_id="FrozenLake-v1", episodes=5, workers=3, mode="train")
    w = acquire_writer(db)
    try:
        a = new_run(w, cfg.canonical_payload())
        b = new_run(w, {"env_id": "Taxi-v3", "agent": "my.mod:Agent"})  # older shape
        for wid in (1, 2):
            w.upsert_worker(b, wid, status="completed")
        w.flush()
    finally:
        w.release()
    runs = TelemetryStore(db).runs()
    assert list(runs.columns) == ["run_id", "name", "created_at", "digest", "config", "status",
                                  "env_id", "agent", "mode", "n_workers"]  # fmt: skip
    rows = runs.set_index("run_id")[["env_id", "agent", "mode", "n_workers"]]
    assert rows.loc[a].tolist() == ["FrozenLake-v1", "q_learning", "train", 3]
    assert rows.loc[b, ["env_id", "agent", "n_workers"]].tolist() == ["Taxi-v3", "my.mod:Agent", 2]
    assert runs["n_workers"].dtype == "int64"
    record = TelemetryStore(db).run(a)
    assert record["env_id"] == "FrozenLake-v1"
    assert record["n_workers"] == 3
    assert record["config"] == cfg.canonical_payload()
    assert str(record["created_at"].tz) == "UTC"


def test_unknown_run_names_the_nearest_ids(db: Path) -> None:
    store = TelemetryStore(db)
    with pytest.raises(UnknownRunError, match="has no runs"):
        store.run(new_run_id())
    w = acquire_writer(db)
    try:
        run = new_run(w)
    finally:
        w.release()
    typo = run[:-1] + ("A" if run[-1] != "A" else "B")
    for read in (store.run, store.workers, store.episodes, store.steps, store.run_summary):
        with pytest.raises(UnknownRunError, match=f"did you mean {run}") as info:
            read(typo)
        assert "\n" not in str(info.value)
    with pytest.raises(UnknownRunError, match="1 run"):
        store.run("nothing-like-it")


# -- snapshots --------------------------------------------------------------------------------


def test_snapshot_frames_agree_while_another_thread_writes(db: Path) -> None:
    w = acquire_writer(db, commit_interval=0.005)
    run = new_run(w)
    w.upsert_worker(run, 1, status="running")
    w.flush()
    stop = threading.Event()

    def write() -> None:
        ep = 0
        while not stop.is_set():
            w.add_events(full_episode(run, "000001", ep, n=10))
            ep += 1
            time.sleep(0.002)

    writer = threading.Thread(target=write)
    writer.start()
    store = TelemetryStore(db)
    try:
        time.sleep(0.2)
        lengths = store.episodes(run)["length"].sum()
        time.sleep(0.2)
        assert len(store.steps(run)) > lengths  # without a snapshot the two disagree
        for _ in range(3):
            with store.snapshot() as s:
                episodes = s.episodes(run)
                time.sleep(0.2)  # the writer commits more meanwhile
                steps_df = s.steps(run)
                summary = s.run_summary(run)
            assert len(steps_df) == episodes["length"].sum() > 0
            assert set(steps_df["ep_index"]) == set(episodes["ep_index"])
            assert summary["episodes"].tolist() == [len(episodes)]
        assert len(store.episodes(run)) > len(episodes)  # the writer did go on
    finally:
        stop.set()
        writer.join(10)
        w.release()


# -- trust ------------------------------------------------------------------------------------


def hostile_database(db: Path) -> None:
    """An nbtrain file with a trigger and a view that call an application function."""
    populate(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TRIGGER spy AFTER INSERT ON workers BEGIN SELECT side_effect(); END")
    conn.execute("CREATE VIEW looks_harmless AS SELECT side_effect() AS x FROM runs")
    conn.close()


def side_effect_on(conn: sqlite3.Connection, marker: Path) -> None:
    conn.create_function("side_effect", 0, lambda: marker.write_text("ran") and 1)


def test_views_and_triggers_in_a_file_cannot_call_functions(db: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    hostile_database(db)
    plain = sqlite3.connect(db)  # the test can fail: a default connection runs them
    side_effect_on(plain, marker)
    plain.execute("SELECT * FROM looks_harmless").fetchall()
    assert marker.exists()
    plain.close()
    marker.unlink()
    for readonly in (False, True):
        conn = schema.connect(db, readonly=readonly)
        side_effect_on(conn, marker)
        with pytest.raises(sqlite3.OperationalError, match="unsafe use of side_effect"):
            conn.execute("SELECT * FROM looks_harmless").fetchall()
        if not readonly:
            with pytest.raises(sqlite3.OperationalError, match="unsafe use of side_effect"):
                conn.execute("INSERT INTO workers(run_id, worker_id) VALUES ('r', '000009')")
        conn.close()
    assert not marker.exists()
    # nbtrain's own reads and writes of the file still work (its view uses safe functions)
    store = TelemetryStore(db)
    run = store.runs()["run_id"][0]
    assert len(store.steps(run)) == 4
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM steps").fetchone() == (4,)


def test_every_nbtrain_connection_distrusts_the_schema(db: Path) -> None:
    w = acquire_writer(db)
    try:
        assert w.call(lambda c: c.execute("PRAGMA trusted_schema").fetchone()[0]) == 0
    finally:
        w.release()
    reader = Reader(db)
    for conn in (reader.connect(), reader.connect(), schema.connect(db)):
        assert conn.execute("PRAGMA trusted_schema").fetchone()[0] == 0
        conn.close()
    with TelemetryStore(db).snapshot() as s:
        assert s._reader.rows("PRAGMA trusted_schema") == [(0,)]


def test_read_errors_are_store_errors_naming_the_file(db: Path) -> None:
    populate(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TABLE episodes")
    conn.execute("CREATE VIEW episodes AS SELECT 1 AS nope")
    conn.close()
    with pytest.raises(StoreError, match=str(db)):
        TelemetryStore(db).episodes()


def test_a_removed_failure_listener_is_not_called(db: Path) -> None:
    calls: list[object] = []
    w = acquire_writer(db)
    try:
        w.add_failure_listener(calls.append)
        w.remove_failure_listener(calls.append)
        w.remove_failure_listener(calls.append)  # twice: ignored
        run = new_run(w)
        w.flush()
        db.unlink()  # a removed file is a storage failure at the next batch
        w.add_events(full_episode(run, "000001", 0, n=2))
        with pytest.raises(StoreError, match="removed"):
            w.flush(timeout=10)
    finally:
        w.release()
    assert calls == []
