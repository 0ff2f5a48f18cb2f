"""Removing and moving runs: ``delete_run``, ``archive_run``, ``disk_usage``, ``vacuum``.

A run is every row with its ``run_id`` in every table that has a ``run_id`` column (found in
the file's own schema, so tables added later are covered without a change here) plus its
folder ``nbtrain-runs/{run_id}/`` beside the database.

* ``delete_run`` removes the rows in one write transaction; the folder is renamed aside
  before the commit (and renamed back if the commit fails) and removed after it.
* ``archive_run`` (:mod:`nbtrain.store.archive`) copies the run elsewhere and then deletes
  it here with :func:`delete_rows`.
* A run with a ``pending`` or ``running`` worker (as ``TelemetryStore.workers`` reports it:
  workers of a kernel that died are reported ``failed``) is refused with ``RunError``; the
  write transaction checks again that no worker started meanwhile.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from nbtrain.errors import RunError, StoreError, UnknownRunError
from nbtrain.log_codes import LOG_SERVICE_RUN_DELETED
from nbtrain.logs import log
from nbtrain.statuses import LIVE_STATUSES
from nbtrain.store import runfolder, schema
from nbtrain.store.frames import frame

if TYPE_CHECKING:
    from nbtrain.store import TelemetryStore

WorkerRows = dict[str, tuple[Any, ...]]

# Approximate bytes per row beyond its text columns (keys, numbers, record and index overhead).
EPISODE_ROW_BYTES = 64
CHUNK_ROW_BYTES = 48
WORKER_ROW_BYTES = 48

USAGE_KINDS = {
    "run_id": "str",
    "worker_id": "cat",
    "episodes": "int",
    "steps": "int",
    "bytes": "int",
}
_USAGE_SQL = f"""
WITH ids AS (
    SELECT run_id, worker_id FROM workers
    UNION SELECT DISTINCT run_id, worker_id FROM episodes
    UNION SELECT DISTINCT run_id, worker_id FROM step_chunks
),
e AS (
    SELECT run_id, worker_id, COUNT(*) AS n,
           SUM(length(episode_id) + COALESCE(length(extras), 0) + {EPISODE_ROW_BYTES}) AS b
    FROM episodes GROUP BY run_id, worker_id
),
c AS (
    SELECT run_id, worker_id, SUM(n_steps) AS s, SUM(length(rows) + {CHUNK_ROW_BYTES}) AS b
    FROM step_chunks GROUP BY run_id, worker_id
),
w AS (
    SELECT run_id, worker_id, COALESCE(length(error), 0) + COALESCE(length(traceback), 0)
           + COALESCE(length(output), 0) + {WORKER_ROW_BYTES} AS b
    FROM workers
)
SELECT ids.run_id, ids.worker_id, COALESCE(e.n, 0), COALESCE(c.s, 0),
       COALESCE(e.b, 0) + COALESCE(c.b, 0) + COALESCE(w.b, 0)
FROM ids
LEFT JOIN e ON e.run_id = ids.run_id AND e.worker_id = ids.worker_id
LEFT JOIN c ON c.run_id = ids.run_id AND c.worker_id = ids.worker_id
LEFT JOIN w ON w.run_id = ids.run_id AND w.worker_id = ids.worker_id
ORDER BY 5 DESC, ids.run_id, ids.worker_id
"""


# -- schema discovery --------------------------------------------------------------------------
def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def columns_of(conn: sqlite3.Connection, table: str, db: str = "main") -> list[str]:
    return [str(r[1]) for r in conn.execute(f"PRAGMA {db}.table_info({quote_name(table)})")]


def run_tables(conn: sqlite3.Connection, db: str = "main") -> list[str]:
    """Every table of ``db`` with a ``run_id`` column; ``runs`` last (it names the run)."""
    names = [
        str(r[0])
        for r in conn.execute(
            f"SELECT name FROM {db}.sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    tables = [n for n in names if "run_id" in columns_of(conn, n, db)]
    return sorted(tables, key=lambda t: (t == "runs", t))


def count_rows(
    conn: sqlite3.Connection, tables: list[str], run_id: str, db: str = "main"
) -> dict[str, int]:
    sql = "SELECT COUNT(*) FROM {}.{} WHERE run_id = ?"
    return {
        t: int(conn.execute(sql.format(db, quote_name(t)), (run_id,)).fetchone()[0]) for t in tables
    }


# -- liveness ----------------------------------------------------------------------------------
def _worker_rows(conn: sqlite3.Connection, run_id: str) -> WorkerRows:
    rows = conn.execute(
        "SELECT worker_id, status, pid, started_at FROM workers WHERE run_id = ?", (run_id,)
    )
    return {str(r[0]): tuple(r[1:]) for r in rows}


def check_not_live(store: TelemetryStore, run_id: str) -> None:
    """Raise ``RunError`` if the store reports a pending/running worker of the run (the rows
    are committed before an owner reports a status, and what an owner in this process holds
    but could not write is included: see :mod:`nbtrain.store.liveness`)."""
    if not isinstance(run_id, str):
        raise TypeError(f"run_id must be a str, not {type(run_id).__name__}")
    workers = store.workers(run_id)  # UnknownRunError; reports dead owners' workers as failed
    statuses = dict(zip(workers["worker_id"], workers["status"], strict=True))
    live = [f"{w} ({s})" for w, s in sorted(statuses.items()) if s in LIVE_STATUSES]
    if live:
        raise RunError(
            f"run {run_id} has live workers: {', '.join(live)}; stop it first "
            f"(Run.open(run_id, db=...).stop() or `nbtrain stop {run_id}`)"
        )


def refuse_live(store: TelemetryStore, run_id: str, conn: sqlite3.Connection) -> WorkerRows:
    """:func:`check_not_live`, returning the raw worker rows as they were just before it,
    for :func:`_recheck` inside the write transaction."""
    if not isinstance(run_id, str):
        raise TypeError(f"run_id must be a str, not {type(run_id).__name__}")
    before = _worker_rows(conn, run_id)
    check_not_live(store, run_id)
    return before


def _recheck(conn: sqlite3.Connection, run_id: str, before: WorkerRows) -> None:
    for wid, row in _worker_rows(conn, run_id).items():
        if row[0] in LIVE_STATUSES and before.get(wid) != row:
            raise RunError(f"worker {wid} of run {run_id} was started meanwhile; stop it first")


# -- delete ------------------------------------------------------------------------------------
def open_for_writing(path: Path, what: str) -> sqlite3.Connection:
    """A write connection, or ``StoreError`` naming the file (read-only, gone, locked away)."""
    try:
        return schema.connect(path)
    except sqlite3.Error as err:
        raise StoreError(
            f"cannot {what}: {path} cannot be written ({err}); the run is unchanged"
        ) from err


def delete_rows(
    conn: sqlite3.Connection,
    db_path: Path,
    run_id: str,
    before: WorkerRows,
    expected: dict[str, int] | None = None,
    keep_folder: bool = False,
) -> dict[str, int]:
    """Delete the run's rows and its folder in one transaction (see the module docstring)."""
    folder = None if keep_folder else runfolder.run_folder(db_path, run_id)
    hidden: Path | None = None
    conn.execute("BEGIN IMMEDIATE")
    try:
        _recheck(conn, run_id, before)
        tables = run_tables(conn)
        if expected is not None:
            now = count_rows(conn, tables, run_id)
            if now != {t: expected.get(t, 0) for t in tables}:
                raise StoreError(
                    f"run {run_id} changed while it was archived (rows now {now}, copied "
                    f"{expected}); nothing was deleted"
                )
        counts = {
            t: conn.execute(f"DELETE FROM {quote_name(t)} WHERE run_id = ?", (run_id,)).rowcount
            for t in tables
        }
        if counts.get("runs", 0) == 0:
            raise UnknownRunError(f"no run {run_id!r} in {db_path}", run_id=run_id, path=db_path)
        hidden = runfolder.stash(folder)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        runfolder.unstash(hidden, folder)
        raise
    runfolder.remove(hidden, run_id)
    return counts


def delete_run(store: TelemetryStore, run_id: str) -> dict[str, int]:
    """Delete every row of ``run_id`` and its run folder; returns ``{table: rows deleted}``."""
    conn = open_for_writing(store.path, f"delete run {run_id}")
    try:
        before = refuse_live(store, run_id, conn)
        try:
            counts = delete_rows(conn, store.path, run_id, before)
        except (sqlite3.Error, OSError) as err:
            raise StoreError(
                f"cannot delete run {run_id} from {store.path}: {err}; the run is unchanged"
            ) from err
    finally:
        conn.close()
    log(logging.INFO, LOG_SERVICE_RUN_DELETED, "deleted %s", counts, run_id=run_id)
    return counts


# -- usage and vacuum --------------------------------------------------------------------------
def disk_usage(store: TelemetryStore) -> pd.DataFrame:
    """Per (run, worker): episodes, stored steps and approximate bytes, largest first.

    ``bytes`` counts the stored text (step chunks, episode ids and extras, worker output)
    plus a fixed per-row overhead; SQL aggregates only, no episode or step is loaded.
    """
    rows = store._reader.rows(_USAGE_SQL)
    names = list(USAGE_KINDS)
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return frame(USAGE_KINDS, dict(zip(names, cols, strict=True)))


def file_bytes(path: Path) -> int:
    """The database file's size plus its write-ahead log (what the file system holds)."""
    total = 0
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists():
            total += p.stat().st_size
    return total


def free_bytes(path: Path) -> int:
    """Bytes in free pages: space a delete made reusable that only ``vacuum`` gives back.
    Read as any reader reads (a file in a read-only place too); errors are StoreErrors."""
    from nbtrain.store.files import connect_reader

    conn, _ = connect_reader(path)
    try:
        pages = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()
    return pages * size


def vacuum(store: TelemetryStore) -> dict[str, int]:
    """Rebuild the file without its free pages and truncate the write-ahead log; returns
    ``{"before": bytes, "after": bytes}`` of the file and its log."""
    before = file_bytes(store.path)
    try:
        conn = schema.connect(store.path)
    except sqlite3.Error as err:
        raise StoreError(f"cannot vacuum {store.path}: {err}") from err
    try:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as err:
        raise StoreError(f"cannot vacuum {store.path}: {err}") from err
    finally:
        conn.close()
    return {"before": before, "after": file_bytes(store.path)}
