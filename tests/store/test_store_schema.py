"""The file layout is public: tables, columns and keys exactly as DESIGN.md says."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from nbtrain.errors import SchemaVersionError
from nbtrain.ids import format_episode_id, new_run_id
from nbtrain.store import SCHEMA_VERSION, TelemetryStore, migrate, schema

DESIGN_COLUMNS = {
    "runs": ["run_id", "name", "created_at", "digest", "config", "status"],
    "workers": ["run_id", "worker_id", "status", "pid", "exit_code", "error", "started_at",
                "ended_at"],
    "episodes": ["run_id", "worker_id", "ep_index", "episode_id", "total_reward", "length",
                 "terminated", "truncated", "seed", "started_at", "ended_at"],
    "steps": ["run_id", "worker_id", "ep_index", "step_index", "action", "reward",
              "terminated", "truncated", "obs", "extras", "ts"],
}  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "t.sqlite"
    migrate(path)
    return path


def _unique_keys(conn: sqlite3.Connection, table: str) -> set[tuple[str, ...]]:
    keys = set()
    for _, name, unique, _origin, _partial in conn.execute(f"PRAGMA index_list({table})"):
        if unique:
            cols = [r[2] for r in conn.execute(f"PRAGMA index_info('{name}')")]
            keys.add(tuple(cols))
    return keys


def test_columns_are_design_columns_first(db: Path) -> None:
    conn = sqlite3.connect(db)
    for table, expected in DESIGN_COLUMNS.items():
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        assert cols[: len(expected)] == expected
    view_cols = [r[1] for r in conn.execute("PRAGMA table_info(steps)")]
    assert view_cols == DESIGN_COLUMNS["steps"]  # exactly, nothing more
    kinds = dict(conn.execute("SELECT name, type FROM sqlite_master WHERE name LIKE 'step%'"))
    assert kinds == {"steps": "view", "step_chunks": "table"}
    assert [r[1] for r in conn.execute("PRAGMA table_info(workers)")][8:] == [
        "traceback",
        "output",
        "pid_start",
        "resumed_from",
        "backend",
        "stop_requested",
    ]
    assert [r[1] for r in conn.execute("PRAGMA table_info(runs)")][6:] == [
        "owner_pid",
        "owner_start",
        "owner_host",
        "lease_at",
        "agent_pickle",
    ]


def test_worker_id_is_text_not_null_everywhere(db: Path) -> None:
    conn = sqlite3.connect(db)
    for table in ("workers", "episodes", "step_chunks"):
        info = {r[1]: r for r in conn.execute(f"PRAGMA table_info({table})")}
        assert info["worker_id"][2] == "TEXT"
        assert info["worker_id"][3] == 1, table


def test_keys(db: Path) -> None:
    conn = sqlite3.connect(db)
    assert _unique_keys(conn, "episodes") == {("run_id", "worker_id", "ep_index"), ("episode_id",)}
    assert ("run_id", "worker_id") in _unique_keys(conn, "workers")
    assert ("run_id",) in _unique_keys(conn, "runs")
    pk = sorted((r[5], r[1]) for r in conn.execute("PRAGMA table_info(step_chunks)") if r[5])
    assert [c for _, c in pk] == ["run_id", "worker_id", "ep_index", "first_step"]
    # episodes has no primary key beyond its unique keys
    assert not any(r[5] for r in conn.execute("PRAGMA table_info(episodes)"))


def test_null_worker_id_is_rejected(db: Path) -> None:
    conn = sqlite3.connect(db)
    run = new_run_id()
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
        conn.execute(
            "INSERT INTO episodes(run_id, worker_id, ep_index, episode_id) VALUES (?, NULL, 0, ?)",
            (run, f"{run}-x"),
        )
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
        conn.execute(
            "INSERT INTO step_chunks(run_id, worker_id, ep_index, first_step, n_steps, rows) "
            "VALUES (?, NULL, 0, 0, 1, '[]')",
            (run,),
        )
    with pytest.raises(sqlite3.OperationalError, match="view"):
        conn.execute("INSERT INTO steps(run_id, worker_id) VALUES (?, '000001')", (run,))


def test_duplicate_chunk_key_is_rejected(db: Path) -> None:
    conn = sqlite3.connect(db)
    run = new_run_id()
    sql = (
        "INSERT INTO step_chunks(run_id, worker_id, ep_index, first_step, n_steps, last_ep, rows) "
        "VALUES (?, ?, ?, ?, 1, 0, '[[0,0,0.0,false,false,0,{},1.0,0]]')"
    )
    conn.execute(sql, (run, "000001", 0, 0))
    conn.execute(sql, (run, "000002", 0, 0))
    conn.execute(sql, (run, "000001", 0, 5))
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(sql, (run, "000001", 0, 0))


def test_duplicate_episode_key_is_rejected(db: Path) -> None:
    conn = sqlite3.connect(db)
    run = new_run_id()
    sql = "INSERT INTO episodes(run_id, worker_id, ep_index, episode_id) VALUES (?, ?, ?, ?)"
    conn.execute(sql, (run, "000001", 0, format_episode_id(run, 0, "000001")))
    conn.execute(sql, (run, "000002", 0, format_episode_id(run, 0, "000002")))
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(sql, (run, "000001", 0, "other-id"))
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(sql, (run, "000003", 0, format_episode_id(run, 0, "000001")))


def test_version_wal_and_meta(db: Path) -> None:
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA page_size").fetchone()[0] == schema.PAGE_SIZE
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    assert migrate(db) == (SCHEMA_VERSION, SCHEMA_VERSION)


def test_new_file_reports_no_old_version(tmp_path: Path) -> None:
    assert migrate(tmp_path / "new.sqlite") == (None, SCHEMA_VERSION)


def test_newer_schema_is_refused(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaVersionError, match=f"version {SCHEMA_VERSION + 1}"):
        TelemetryStore(db)
    with pytest.raises(SchemaVersionError):
        migrate(db)


def _fingerprint(path: Path) -> tuple[object, ...]:
    wal = Path(f"{path}-wal")
    st = path.stat()
    return st.st_mtime_ns, st.st_size, wal.stat().st_size if wal.exists() else 0


def test_opening_an_up_to_date_file_does_not_write(db: Path) -> None:
    from tests.kit.events import full_episode

    from nbtrain.store.writer import acquire_writer

    writer = acquire_writer(db)
    run = new_run_id()
    # A finished run: a row saying "running" with no live owner would be corrected (written).
    writer.create_run(
        run_id=run, name="n", created_at=1.0, digest="d", config={}, status="completed"
    )
    writer.upsert_worker(run, 1, status="completed")
    writer.add_events(full_episode(run, "000001", 0))
    writer.release()  # checkpoints: the WAL is empty now
    before = _fingerprint(db)
    bytes_before = db.read_bytes()
    os.utime(db, ns=(before[0], before[0]))  # type: ignore[arg-type]
    store = TelemetryStore(db)
    store.runs()
    store.workers(run)
    store.episodes(run)
    store.steps(run, 1)
    store.run_summary(run)
    store.aggregate(run)
    TelemetryStore(db).episodes()
    assert _fingerprint(db) == before
    assert db.read_bytes() == bytes_before
