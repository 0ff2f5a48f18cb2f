"""The SQLite schema: tables, columns and connection settings (see docs/store.md).

The file is part of the public interface, so the DDL here is the contract: exact table and
column names, ``worker_id TEXT NOT NULL`` everywhere, and the keys listed in DESIGN.md.

Storage conventions:

* timestamps (``created_at``, ``started_at``, ``ended_at``, ``ts``) are REAL Unix seconds (UTC);
* ``terminated`` / ``truncated`` are INTEGER 0/1;
* steps are stored in chunks, ``rows`` being one JSON array with an array per step (see
  :mod:`nbtrain.store.chunks_write`). Where a worker's episodes are short, chunks of ~8 KB
  span episodes: rows ``[step_index, action, reward, terminated, truncated, obs, extras,
  ts, ep_index]``, ``ep_index`` / ``last_ep`` the first and last episode in the chunk.
  Otherwise a chunk holds an episode's steps from one batch: rows without the trailing
  ``ep_index`` and ``last_ep`` NULL, the only layout before schema version 4. A row per step
  costs more kernel CPU than a training step, a row per short episode more than encoding
  its steps (one B-tree insert each); a chunk costs a fraction of that.
  ``steps`` is a view that expands the chunks with ``json_each`` (slow, ~9 us a row; for
  ad-hoc SQL), ``TelemetryStore.steps`` decodes chunks directly;
* in the view, discrete ``action`` / ``obs`` are INTEGER, float scalars REAL, arrays JSON
  text; ``extras`` is JSON text, ``'{}'`` when the agent returned nothing.

The schema version is ``PRAGMA user_version`` (readable without a write) mirrored into the
``meta`` table for people who browse the file with SQL tools.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

SCHEMA_VERSION = 4
BUSY_TIMEOUT_MS = 5000
# The WAL is truncated back to this size after checkpoints, so it stays bounded.
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
# New files only (fixed at creation). Chunks are kilobytes each: with 4 KiB pages every
# insert splits pages and inserting costs several times more CPU and I/O.
PAGE_SIZE = 65536
# The writer folds the WAL into the file once it holds this many bytes. SQLite's default,
# 1,000 pages, is meant for 4 KiB pages: with 64 KiB pages it let the WAL grow to 64 MB, all
# of it copied at the end of a run while wait() waited. Every 4 MB cost ~15 % more kernel
# CPU (the B-trees' hot pages are copied again at every checkpoint); 16 MB, no measurable.
WAL_CHECKPOINT_BYTES = 16 * 1024 * 1024

RUN_COLUMNS = (
    "run_id",
    "name",
    "created_at",
    "digest",
    "config",
    "status",
    "owner_pid",
    "owner_start",
    "owner_host",
    "lease_at",
    "agent_pickle",
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
# The columns of a chunk row, and the fields of each step inside its JSON ``rows``: the
# step's own columns, then its episode (absent in chunks from before version 4).
CHUNK_COLUMNS = ("run_id", "worker_id", "ep_index", "first_step", "n_steps", "rows", "last_ep")
CHUNK_FIELDS = (*STEP_COLUMNS[3:], "ep_index")
LEGACY_CHUNK_FIELDS = STEP_COLUMNS[3:]

_EXTRACT = ",\n".join(
    f"    json_extract(j.value, '$[{i}]') AS {name}" for i, name in enumerate(LEGACY_CHUNK_FIELDS)
)
# json_extract rather than ``->>`` so that SQL tools with an older SQLite can read it too.
STEPS_VIEW_DDL = f"""CREATE VIEW steps AS SELECT
    c.run_id AS run_id,
    c.worker_id AS worker_id,
    COALESCE(json_extract(j.value, '$[{len(LEGACY_CHUNK_FIELDS)}]'), c.ep_index) AS ep_index,
{_EXTRACT}
FROM step_chunks AS c, json_each(c.rows) AS j"""

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
    status TEXT,
    owner_pid INTEGER,
    owner_start TEXT,
    owner_host TEXT,
    lease_at REAL,
    agent_pickle TEXT
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
    pid_start TEXT,
    resumed_from TEXT,
    backend TEXT,
    stop_requested REAL,
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
    # WITHOUT ROWID: the primary key is the clustering order, so a worker's chunks are
    # contiguous on disk and reading them back is one range scan. In new files ``last_ep``
    # comes before ``rows`` (upgraded ones have it last: ALTER TABLE appends columns).
    """CREATE TABLE step_chunks (
    run_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    ep_index INTEGER NOT NULL,
    first_step INTEGER NOT NULL,
    n_steps INTEGER NOT NULL,
    last_ep INTEGER,
    rows TEXT NOT NULL,
    PRIMARY KEY (run_id, worker_id, ep_index, first_step)
) WITHOUT ROWID""",
    STEPS_VIEW_DDL,
)

TABLE_NAMES = ("meta", "runs", "workers", "episodes", "step_chunks", "steps")
# Added by version 3 (``ALTER TABLE ... ADD COLUMN`` when upgrading from 2).
V3_COLUMNS = (
    ("runs", "owner_pid INTEGER"),
    ("runs", "owner_start TEXT"),
    ("runs", "owner_host TEXT"),
    ("runs", "lease_at REAL"),
    ("runs", "agent_pickle TEXT"),
    ("workers", "pid_start TEXT"),
    ("workers", "resumed_from TEXT"),
    ("workers", "backend TEXT"),
    ("workers", "stop_requested REAL"),
)


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


# The writer's page cache, in KiB. SQLite's default of 2 MB is 31 of nbtrain's 64 KiB pages,
# fewer than the B-tree pages a batch keeps touching with several workers (each worker's
# place in the chunk key and in both episode keys): pages went out and were read back, and
# dirty ones were spilled into the WAL mid-transaction and written again. With 16 MB, a
# replay of a 4-worker stream (160,000 episodes) read 197 instead of 828 MB and wrote 484
# instead of 661 MB through system calls; in real 4-worker runs the kernel's CPU went down
# ~4 % (docs/performance.md, eighth pass). SQLite allocates it as pages are used.
WRITER_CACHE_KIB = 16 * 1024


def uri_for(path: Path, *, readonly: bool, immutable: bool = False) -> str:
    mode = "ro" if readonly or immutable else "rwc"
    return f"file:{quote(str(path))}?mode={mode}" + ("&immutable=1" if immutable else "")


def connect(path: Path, *, readonly: bool = False, immutable: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with the busy timeout set.

    Only connection-level pragmas are set here; ``journal_mode=WAL`` is a write to the file
    and is done once, when the schema is created or migrated. ``immutable`` reads a file
    whose folder or mount is read-only (no ``-shm`` can be made); see docs/store.md.

    Every connection distrusts the file's schema: ``trusted_schema=OFF`` (views and triggers
    may call only side-effect-free functions) and, where Python exposes it, defensive mode.
    """
    conn = sqlite3.connect(
        uri_for(path, readonly=readonly, immutable=immutable),
        uri=True,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
    )
    try:
        conn.execute("PRAGMA trusted_schema = OFF")
        if _DEFENSIVE is not None:
            conn.setconfig(_DEFENSIVE, True)  # type: ignore[attr-defined,unused-ignore]
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not (readonly or immutable):
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            set_wal_autocheckpoint(conn)
    except BaseException:
        conn.close()
        raise
    return conn


# Python >= 3.12 exposes sqlite3_db_config; older ones cannot set defensive mode.
_DEFENSIVE: int | None = (
    getattr(sqlite3, "SQLITE_DBCONFIG_DEFENSIVE", None)
    if hasattr(sqlite3.Connection, "setconfig")
    else None
)


def set_wal_autocheckpoint(conn: sqlite3.Connection) -> None:
    """Checkpoint every :data:`WAL_CHECKPOINT_BYTES`, or every 1,000 pages (SQLite's
    default, kept for files made with small pages by older versions) if that comes first."""
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    pages = min(1000, max(1, WAL_CHECKPOINT_BYTES // page_size))
    conn.execute(f"PRAGMA wal_autocheckpoint = {pages}")


def read_rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of one short query on a read-only connection of its own (opened and closed
    here), for code that reads a value or two outside a store reader."""
    conn = connect(path, readonly=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def existing_tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    return {str(row[0]) for row in rows}


def table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")]
