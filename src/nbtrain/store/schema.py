"""The SQLite schema: tables, columns and connection settings (see docs/store.md).

The file is part of the public interface, so the DDL here is the contract: exact table and
column names, ``worker_id TEXT NOT NULL`` everywhere, and the keys listed in DESIGN.md.

Storage conventions:

* timestamps (``created_at``, ``started_at``, ``ended_at``, ``ts``) are REAL Unix seconds (UTC);
* ``terminated`` / ``truncated`` are INTEGER 0/1;
* ``action`` and ``obs`` have no declared type: discrete values are stored as INTEGER,
  float scalars as REAL, arrays (and anything else) as JSON text;
* ``extras`` and ``runs.config`` are JSON text; ``steps.extras`` is ``'{}'`` when the agent
  returned nothing, so the column is never NULL for rows nbtrain writes.

The schema version is ``PRAGMA user_version`` (readable without a write) mirrored into the
``meta`` table for people who browse the file with SQL tools.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from urllib.parse import quote

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 5000
# The WAL is truncated back to this size after checkpoints, so it stays bounded.
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024

RUN_COLUMNS = ("run_id", "name", "created_at", "digest", "config", "status")
WORKER_COLUMNS = (
    "run_id",
    "worker_id",
    "status",
    "pid",
    "exit_code",
    "error",
    "started_at",
    "ended_at",
    "traceback",
    "output",
)
EPISODE_COLUMNS = (
    "run_id",
    "worker_id",
    "ep_index",
    "episode_id",
    "total_reward",
    "length",
    "terminated",
    "truncated",
    "seed",
    "started_at",
    "ended_at",
    "extras",
)
STEP_COLUMNS = (
    "run_id",
    "worker_id",
    "ep_index",
    "step_index",
    "action",
    "reward",
    "terminated",
    "truncated",
    "obs",
    "extras",
    "ts",
)

TABLES_DDL = (
    """CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
)""",
    """CREATE TABLE runs (
    run_id TEXT PRIMARY KEY NOT NULL,
    name TEXT,
    created_at REAL,
    digest TEXT,
    config TEXT,
    status TEXT
)""",
    """CREATE TABLE workers (
    run_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    status TEXT,
    pid INTEGER,
    exit_code INTEGER,
    error TEXT,
    started_at REAL,
    ended_at REAL,
    traceback TEXT,
    output TEXT,
    PRIMARY KEY (run_id, worker_id)
)""",
    """CREATE TABLE episodes (
    run_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    ep_index INTEGER NOT NULL,
    episode_id TEXT NOT NULL,
    total_reward REAL,
    length INTEGER,
    terminated INTEGER,
    truncated INTEGER,
    seed INTEGER,
    started_at REAL,
    ended_at REAL,
    extras TEXT,
    UNIQUE (run_id, worker_id, ep_index),
    UNIQUE (episode_id)
)""",
    # WITHOUT ROWID: the primary key is the clustering order, so a worker's steps are
    # contiguous on disk and reading them back is one range scan.
    """CREATE TABLE steps (
    run_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    ep_index INTEGER NOT NULL,
    step_index INTEGER NOT NULL,
    action,
    reward REAL,
    terminated INTEGER,
    truncated INTEGER,
    obs,
    extras TEXT,
    ts REAL,
    PRIMARY KEY (run_id, worker_id, ep_index, step_index)
) WITHOUT ROWID""",
)

TABLE_NAMES = ("meta", "runs", "workers", "episodes", "steps")


def create_tables(conn: sqlite3.Connection) -> None:
    """Create every table and stamp the version; the caller owns the transaction."""
    for ddl in TABLES_DDL:
        conn.execute(ddl)
    stamp_version(conn)


def stamp_version(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
        (str(SCHEMA_VERSION),),
    )


_gates: dict[Path, threading.RLock] = {}
_gates_lock = threading.Lock()


def file_gate(path: Path) -> threading.RLock:
    """A process-wide lock per database file, held around every use of a connection to it.

    The ADBC driver links its own copy of SQLite. POSIX file locks never conflict within one
    process, and closing any descriptor of a file drops all of the process's locks on it, so
    two SQLite copies in one process do not see each other's locks (sqlite.org/howtocorrupt,
    2.2.1). nbtrain's own connections therefore take turns through this gate; other processes
    are unaffected (their locks are real). Connections opened by user code bypass it.
    """
    with _gates_lock:
        gate = _gates.get(path)
        if gate is None:
            gate = _gates[path] = threading.RLock()
        return gate


def uri_for(path: Path, *, readonly: bool) -> str:
    mode = "ro" if readonly else "rwc"
    return f"file:{quote(str(path))}?mode={mode}"


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with the busy timeout set.

    Only connection-level pragmas are set here; ``journal_mode=WAL`` is a write to the file
    and is done once, when the schema is created or migrated.
    """
    conn = sqlite3.connect(
        uri_for(path, readonly=readonly),
        uri=True,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not readonly:
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        conn.execute("PRAGMA wal_autocheckpoint = 1000")
    return conn


def existing_tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    return {str(row[0]) for row in rows}


def table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")]
