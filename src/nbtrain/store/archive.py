"""``archive_run``: move a run into another nbtrain database without ever losing it.

The rows are copied into an ordinary nbtrain database (created or upgraded by the store's
own migration code) and the counts checked in the same transaction; the run folder is
copied beside the archive; only then is the run deleted from the source
(:func:`nbtrain.store.retention.delete_rows`), which checks that the source still holds
exactly what was copied. A source the run could not be deleted from (a read-only file,
folder or mount) is refused before the archive is touched; any failure before the source's
commit leaves the run whole in the source and takes back what this call wrote beside it: the
archive file it created (else the rows it copied into it), the run folder and the runs folder
it made.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrain.errors import ReadOnlyStoreError, RunError, StoreError
from nbtrain.log_codes import LOG_SERVICE_RUN_ARCHIVED
from nbtrain.logs import log
from nbtrain.store import runfolder, schema
from nbtrain.store.migrations import migrate
from nbtrain.store.retention import (
    columns_of,
    count_rows,
    delete_rows,
    open_for_writing,
    quote_name,
    refuse_live,
    run_tables,
)

if TYPE_CHECKING:
    from nbtrain.store import TelemetryStore


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
    # The source's own journal files: SQLite would build the archive inside the source's
    # WAL and delete it when the source closes, taking the archived run with it.
    side = {source.with_name(source.name + suffix) for suffix in SIDE_FILES}
    if dest in side:  # (both resolved: the source's folder is the store's resolved path)
        raise StoreError(
            f"cannot archive into {dest.name}: it is a journal file of {source.name}; "
            "pass the path of another .sqlite file"
        )
    return dest


SIDE_FILES = ("-wal", "-shm", "-journal")


def _verify_archive(dest: Path, run_id: str, copied: dict[str, int]) -> None:
    """Count the run's rows in the archive again, through a connection of its own, before
    the source lets go of them: what was committed there must still be there."""
    try:
        conn = schema.connect(dest, readonly=True)
        try:
            tables = [t for t in run_tables(conn) if t in copied]
            got = count_rows(conn, tables, run_id, "main")
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as err:
        raise StoreError(f"cannot read archive {dest} back: {err}; the run is unchanged") from err
    if got != copied:
        raise StoreError(
            f"archive {dest} holds {got} rows of run {run_id} after copying {copied}; "
            "the run is unchanged"
        )


def _prepare_archive(dest: Path) -> None:
    """Create or upgrade the archive with the store's own schema code (same version)."""
    try:
        migrate(dest)
    except StoreError as err:
        # Keep what went wrong, not the advice after it (meant for a run being written).
        raise type(err)(str(err).split("; ")[0]) from err
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
                cols = ", ".join(quote_name(c) for c in columns_of(conn, table, "src"))
                conn.execute(
                    f"INSERT INTO main.{quote_name(table)} ({cols}) "
                    f"SELECT {cols} FROM src.{quote_name(table)} WHERE run_id = ?",
                    (run_id,),
                )
            want = count_rows(conn, tables, run_id, "src")
            got = count_rows(conn, tables, run_id, "main")
            if want != got or want.get("runs") != 1:
                raise StoreError(
                    f"archive {dest} holds {got} rows of run {run_id} after copying {want}"
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return want


def _refuse_unchangeable_source(
    db_path: Path, folder: Path | None, run_id: str, dest: Path
) -> None:
    """``ReadOnlyStoreError`` naming the path if the run could not be deleted from the source
    after the copy: the database file or its folder (SQLite writes its journal there) is not
    writable, or the folder its run folder is renamed in is not. Checked before the archive
    is touched, since finding it at the last step means taking the copy back out again."""
    places = [db_path, db_path.parent]
    if runfolder.exists(folder):
        assert folder is not None
        places.append(folder.parent)
    for path in places:
        if not os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0)):
            raise ReadOnlyStoreError(
                f"cannot archive run {run_id}: {path} cannot be written ({_why_read_only(path)})"
                f", so the run could not be deleted from {db_path.name} after copying it; "
                f"nothing was written to {dest}; the run is unchanged"
            )


def _why_read_only(path: Path) -> str:
    with contextlib.suppress(OSError):
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "a read-only file system"
    return "no write permission, or an immutable file"


def _remove_archive_file(dest: Path) -> str:
    """Remove an archive file this call created, with its journal files; '' or the errors."""
    errors = []
    for path in (dest, *(dest.with_name(dest.name + s) for s in SIDE_FILES)):
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            errors.append(str(err))
    return "; ".join(errors)


def _undo_archive(
    dest: Path, run_id: str, folder: Path | None, *, created: bool, runs_folder: Path | None
) -> str:
    """Take back what this call wrote for the run after a later step failed: the archive file
    if it created it (else the run's rows in it), the run folder it copied and the runs
    folder it made for it. Returns what was left ('' if nothing): the source still has the
    run whole, so it is only a duplicate, but one the user has to remove."""
    left = []
    runfolder.remove(folder, run_id)
    if runfolder.exists(folder):
        left.append(f"folder {folder}")
    if runs_folder is not None:
        with contextlib.suppress(OSError):  # not empty: another run was archived there since
            runs_folder.rmdir()
    if created:
        if error := _remove_archive_file(dest):
            left.append(f"the archive file {dest} this call made ({error})")
    else:
        try:
            conn = schema.connect(dest)
            try:
                conn.execute("BEGIN IMMEDIATE")
                for table in run_tables(conn):
                    conn.execute(f"DELETE FROM {quote_name(table)} WHERE run_id = ?", (run_id,))
                conn.execute("COMMIT")
            finally:
                conn.close()
        except sqlite3.Error as err:
            left.append(f"the run's rows in {dest} ({err})")
    if not left:
        return ""
    log(logging.WARNING, LOG_SERVICE_RUN_ARCHIVED, "could not remove the partial copy: %s",
        "; ".join(left), run_id=run_id)  # fmt: skip
    return f"; but the copy could not be removed, delete it by hand: {'; '.join(left)}"


def archive_run(store: TelemetryStore, run_id: str, to: str | Path) -> dict[str, int]:
    """Move a run (rows and folder) into the database ``to``; returns ``{table: rows}``."""
    dest = archive_path(to, store.path)
    conn = open_for_writing(store.path, f"archive run {run_id}")
    try:
        before = refuse_live(store, run_id, conn)
        src_folder = runfolder.run_folder(store.path, run_id)
        dest_folder = runfolder.run_folder(dest, run_id)
        # An archive in the same folder as the database shares its run folders.
        shared = src_folder is not None and src_folder == dest_folder
        if not shared and runfolder.exists(src_folder) and runfolder.exists(dest_folder):
            raise RunError(f"{dest_folder} already exists; run {run_id} is already archived there")
        _refuse_unchangeable_source(store.path, None if shared else src_folder, run_id, dest)
        created = not dest.exists()
        # The runs folder beside the archive, when copying the run folder is what makes it.
        runs_folder = None
        if dest_folder is not None and not shared and not runfolder.exists(dest_folder.parent):
            runs_folder = dest_folder.parent
        try:
            _prepare_archive(dest)
            copied = _copy_rows(store.path, dest, run_id)
        except (sqlite3.Error, OSError, StoreError) as err:
            if created:  # a file this call made holds nothing anyone needs
                _remove_archive_file(dest)
            kind = type(err) if isinstance(err, StoreError) else StoreError
            raise kind(
                f"cannot archive run {run_id} into {dest}: {err}; the run is unchanged"
            ) from err
        made: Path | None = None
        try:
            _verify_archive(dest, run_id, copied)
            if dest_folder is not None and not shared:
                made = runfolder.copy_to(src_folder, dest_folder)
            delete_rows(conn, store.path, run_id, before, expected=copied, keep_folder=shared)
        except BaseException as err:
            left = _undo_archive(dest, run_id, made, created=created, runs_folder=runs_folder)
            if isinstance(err, sqlite3.Error | OSError):
                raise StoreError(
                    f"cannot archive run {run_id} into {dest}: {err}; the run is unchanged{left}"
                ) from err
            if left:
                err.add_note(left.removeprefix("; "))
            raise
    finally:
        conn.close()
    log(logging.INFO, LOG_SERVICE_RUN_ARCHIVED, "archived %s to %s", copied, dest, run_id=run_id)
    return copied
