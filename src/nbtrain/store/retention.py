"""Removing and moving runs: ``delete_run``, ``archive_run``, ``disk_usage``, ``vacuum``.

A run is every row with its ``run_id`` in every table that has a ``run_id`` column (found in
the file's own schema, so tables added later are covered without a change here) plus its
folder ``nbtrain-runs/{run_id}/`` beside the database.

* ``delete_run`` removes the rows in one write transaction; the folder is renamed aside
  before the commit (and renamed back if the commit fails) and removed after it.
* ``archive_run`` copies the rows into an ordinary nbtrain database (created or upgraded by
  the store's own migration code) and checks the counts in the same transaction, copies the
  folder beside the archive, and only then deletes the run here, checking that the source
  still holds exactly what was copied. Any failure before the source's commit leaves the
  run whole in the source and removes what was written to the archive.
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
from nbtrain.log_codes import LOG_SERVICE_RUN_ARCHIVED, LOG_SERVICE_RUN_DELETED
from nbtrain.logs import log
from nbtrain.statuses import LIVE_STATUSES
from nbtrain.store import runfolder, schema
from nbtrain.store.frames import frame
from nbtrain.store.migrations import migrate

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
def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def columns_of(conn: sqlite3.Connection, table: str, db: str = "main") -> list[str]:
    return [str(r[1]) for r in conn.execute(f"PRAGMA {db}.table_info({_q(table)})")]


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
    return {
        t: int(conn.execute(f"SELECT COUNT(*) FROM {db}.{_q(t)} WHERE run_id = ?", (run_id,))
               .fetchone()[0])
        for t in tables
    }  # fmt: skip


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
def _open_for_writing(path: Path, what: str) -> sqlite3.Connection:
    """A write connection, or ``StoreError`` naming the file (read-only, gone, locked away)."""
    try:
        return schema.connect(path)
    except sqlite3.Error as err:
        raise StoreError(
            f"cannot {what}: {path} cannot be written ({err}); the run is unchanged"
        ) from err


def _delete_rows(
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
            t: conn.execute(f"DELETE FROM {_q(t)} WHERE run_id = ?", (run_id,)).rowcount
            for t in tables
        }
        if counts.get("runs", 0) == 0:
            raise UnknownRunError(f"no run {run_id!r} in {db_path}")
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
    conn = _open_for_writing(store.path, f"delete run {run_id}")
    try:
        before = refuse_live(store, run_id, conn)
        try:
            counts = _delete_rows(conn, store.path, run_id, before)
        except (sqlite3.Error, OSError) as err:
            raise StoreError(
                f"cannot delete run {run_id} from {store.path}: {err}; the run is unchanged"
            ) from err
    finally:
        conn.close()
    log(logging.INFO, LOG_SERVICE_RUN_DELETED, "deleted %s", counts, run_id=run_id)
    return counts


# -- archive -----------------------------------------------------------------------------------
def archive_path(to: str | Path, source: Path) -> Path:
    if not isinstance(to, str | Path):
        raise TypeError(f"to= must be a path, not {type(to).__name__}")
    dest = Path(to).expanduser()
    if dest.is_dir():
        raise StoreError(f"archive {dest} is a folder; pass the path of a .sqlite file")
    if not dest.parent.is_dir():
        raise StoreError(f"the folder of archive {dest} does not exist")
    dest = dest.resolve()
    if dest == source or (dest.exists() and dest.samefile(source)):
        raise StoreError(f"cannot archive {source} into itself")
    return dest


def _prepare_archive(dest: Path) -> None:
    """Create or upgrade the archive with the store's own schema code (same version)."""
    try:
        migrate(dest)
    except StoreError:
        raise
    except (sqlite3.Error, OSError) as err:
        raise StoreError(f"cannot create or open archive {dest}: {err}") from err


def _ensure_tables(conn: sqlite3.Connection, tables: list[str], dest: Path) -> None:
    """Tables the source has but the archive lacks are made from the source's own DDL; a
    column the archive lacks is an error (both files have this nbtrain's schema version)."""
    have = {str(r[0]) for r in conn.execute("SELECT name FROM main.sqlite_master")}
    for table in tables:
        if table not in have:
            (ddl,) = conn.execute(
                "SELECT sql FROM src.sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            conn.execute(str(ddl))
        missing = set(columns_of(conn, table, "src")) - set(columns_of(conn, table, "main"))
        if missing:
            raise StoreError(f"archive {dest} table {table} lacks columns {sorted(missing)}")


def _copy_rows(source: Path, dest: Path, run_id: str) -> dict[str, int]:
    """Copy the run's rows into ``dest`` and verify the counts, in one archive transaction."""
    conn = schema.connect(dest)
    try:
        conn.execute("ATTACH DATABASE ? AS src", (schema.uri_for(source, readonly=True),))
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = run_tables(conn, "src")
            present = set(run_tables(conn, "main")) & set(tables)
            if any(count_rows(conn, sorted(present), run_id, "main").values()):
                raise RunError(f"run {run_id} is already in archive {dest}")
            _ensure_tables(conn, tables, dest)
            for table in tables:
                cols = ", ".join(_q(c) for c in columns_of(conn, table, "src"))
                conn.execute(
                    f"INSERT INTO main.{_q(table)} ({cols}) "
                    f"SELECT {cols} FROM src.{_q(table)} WHERE run_id = ?",
                    (run_id,),
                )
            want = count_rows(conn, tables, run_id, "src")
            got = count_rows(conn, tables, run_id, "main")
            if want != got or want.get("runs") != 1:
                raise StoreError(
                    f"archive {dest} holds {got} rows of run {run_id} after copying {want}; "
                    "nothing was archived"
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return want


def _undo_archive(dest: Path, run_id: str, folder: Path | None) -> None:
    """Take the run back out of the archive after a later step failed (best effort: the
    source still has it whole, so a leftover copy is only a duplicate)."""
    runfolder.remove(folder, run_id)
    try:
        conn = schema.connect(dest)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for table in run_tables(conn):
                conn.execute(f"DELETE FROM {_q(table)} WHERE run_id = ?", (run_id,))
            conn.execute("COMMIT")
        finally:
            conn.close()
    except sqlite3.Error as err:
        log(
            logging.WARNING,
            LOG_SERVICE_RUN_ARCHIVED,
            "could not remove the partial copy from %s: %s",
            dest,
            err,
            run_id=run_id,
        )


def archive_run(store: TelemetryStore, run_id: str, to: str | Path) -> dict[str, int]:
    """Move a run (rows and folder) into the database ``to``; returns ``{table: rows}``."""
    dest = archive_path(to, store.path)
    conn = _open_for_writing(store.path, f"archive run {run_id}")
    try:
        before = refuse_live(store, run_id, conn)
        src_folder = runfolder.run_folder(store.path, run_id)
        dest_folder = runfolder.run_folder(dest, run_id)
        # An archive in the same folder as the database shares its run folders.
        shared = src_folder is not None and src_folder == dest_folder
        if not shared and runfolder.exists(src_folder) and runfolder.exists(dest_folder):
            raise RunError(f"{dest_folder} already exists; run {run_id} is already archived there")
        _prepare_archive(dest)
        try:
            copied = _copy_rows(store.path, dest, run_id)
        except (sqlite3.Error, OSError) as err:
            raise StoreError(
                f"cannot archive run {run_id} into {dest}: {err}; the run is unchanged"
            ) from err
        made: Path | None = None
        try:
            if dest_folder is not None and not shared:
                made = runfolder.copy_to(src_folder, dest_folder)
            _delete_rows(conn, store.path, run_id, before, expected=copied, keep_folder=shared)
        except BaseException as err:
            _undo_archive(dest, run_id, made)
            if isinstance(err, sqlite3.Error | OSError):
                raise StoreError(
                    f"cannot archive run {run_id} into {dest}: {err}; the run is unchanged"
                ) from err
            raise
    finally:
        conn.close()
    log(logging.INFO, LOG_SERVICE_RUN_ARCHIVED, "archived %s to %s", copied, dest, run_id=run_id)
    return copied


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
    """Bytes in free pages: space a delete made reusable that only ``vacuum`` gives back."""
    conn = schema.connect(path, readonly=True)
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
