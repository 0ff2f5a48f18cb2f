"""Schema versions and in-place upgrades.

Version 0 is the legacy single-worker layout: ``runs(run_id, name, created_at, config)`` with
``created_at`` as ISO text or Unix seconds, and ``episodes`` / ``steps`` keyed by
``(run_id, ep_index[, step_index])`` without a ``worker_id``; legacy episode ids look like
``{run_id}-ep000003``. Upgrading gives every legacy row worker id ``000001``, rebuilds episode
ids as ``{run_id}-w000001-ep000003`` and adds a ``workers`` row per run.

Version 1 (never released) had a row-per-step ``steps`` table; version 2 stores steps in
``step_chunks`` (one JSON array per episode part) behind a ``steps`` view. Upgrading from 0
or 1 moves step rows into chunks, one per episode (at most ``MIGRATION_CHUNK`` steps each).
Version 3 adds the owner lease to ``runs`` and ``pid_start`` / ``resumed_from`` / ``backend``
to ``workers`` (nullable columns, added in place). Version 4 lets a chunk span episodes
(``step_chunks.last_ep`` set, each row ending with its ``ep_index``); existing chunks hold
one episode each, the layout with ``last_ep`` NULL, and are left as they are.

Checking the version only reads; a file that is already current is never written. Every
failure is a :class:`~nbtrain.errors.StoreError` subclass naming the path (see
:mod:`nbtrain.store.files`). This module decides whether and how to upgrade; the steps from
each version to the next are in :mod:`nbtrain.store.upgrades`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from nbtrain.errors import ReadOnlyStoreError, SchemaVersionError, StoreError
from nbtrain.log_codes import LOG_SERVICE_SQLITE_MIGRATED
from nbtrain.logs import log
from nbtrain.store import files, schema
from nbtrain.store.upgrades import UPGRADES

# A table of a file without a schema version (written before versions were stamped) is
# nbtrain's if it has these key columns and no column nbtrain never wrote: the upgrade
# copies those columns and drops the old table, so another application's ``runs`` table,
# whose other columns would be lost, is refused instead.
_LEGACY_KEYS = {
    "runs": {"run_id"},
    "episodes": {"run_id", "ep_index"},
    "steps": {"run_id", "ep_index", "step_index"},
}
_LEGACY_COLUMNS = {
    "runs": set(schema.RUN_COLUMNS),
    "episodes": set(schema.EPISODE_COLUMNS) - {"worker_id"},
    "steps": set(schema.STEP_COLUMNS) - {"worker_id"},
}


def read_version(conn: sqlite3.Connection, path: Path | None = None) -> int | None:
    """The schema version of the open file, or None when it holds no tables yet.

    Raises :class:`StoreError` for another application's database: nbtrain neither adds its
    tables to it nor switches it to WAL.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = {t for t in schema.existing_tables(conn) if not t.startswith("sqlite_")}
    if version:
        # every version had these two; a newer one is named as newer (check_version)
        if {"runs", "episodes"} <= tables or version > schema.SCHEMA_VERSION:
            return version
    elif not tables:
        return None
    else:
        legacy = tables & set(_LEGACY_KEYS)
        shapes = {t: set(schema.table_columns(conn, t)) for t in legacy}
        if legacy and all(
            _LEGACY_KEYS[t] <= cols <= _LEGACY_COLUMNS[t] for t, cols in shapes.items()
        ):
            return 0
    raise StoreError(
        f"{path or 'the file'} is an SQLite database but not an nbtrain store (tables: "
        f"{', '.join(sorted(tables)) or 'none'}, user_version {version}); nbtrain leaves "
        "it unchanged: pass another file"
    )


def check_version(version: int | None, path: Path) -> None:
    if version is not None and version > schema.SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has store schema version {version}, but this nbtrain reads versions up to "
            f"{schema.SCHEMA_VERSION}; upgrade nbtrain to open it"
        )


def needs_migration(path: Path) -> bool:
    """True when ``path`` is missing, empty or older than this nbtrain (read-only check)."""
    with files.no_side_files_if_refused(path):
        files.check_file(path)
        if not path.exists() or path.stat().st_size == 0:
            return True
        conn, _ = files.connect_reader(path)
        try:
            version = _read(conn, path)
        finally:
            conn.close()
        check_version(version, path)
    return version != schema.SCHEMA_VERSION


def migrate(path: str | Path) -> tuple[int | None, int]:
    """Create or upgrade the store at ``path`` in place; return ``(old, new)`` versions.

    ``old`` is None for a new file. Raises :class:`SchemaVersionError` for a newer file and
    another :class:`StoreError` subclass for a file that cannot be opened or written.
    Safe against a concurrent migration in another process (the check is repeated under the
    write lock).
    """
    path = Path(path).expanduser().resolve()
    with files.no_side_files_if_refused(path):
        files.check_file(path)
        try:
            return _migrate(path)
        except sqlite3.Error as exc:
            error = files.store_error(exc, path, writing=True)
            if isinstance(error, ReadOnlyStoreError) and _stored_version(path) != (
                schema.SCHEMA_VERSION
            ):
                error = ReadOnlyStoreError(
                    f"{path} must be created or upgraded to store schema version "
                    f"{schema.SCHEMA_VERSION} but cannot be written ({exc}); copy it to a "
                    "writable folder and open the copy"
                )
            raise error from exc


def ensure_writable(path: str | Path) -> Path:
    """Create or upgrade the store at ``path`` and prove that it can be written; return the
    resolved path. The check before a run starts: it raises the :class:`StoreError`
    subclass for the file (corrupt, folder, read-only, newer schema, ...) naming the path.

    It writes a row inside a transaction and rolls it back, so nothing changes in the file.
    """
    resolved = Path(path).expanduser().resolve()
    with files.no_side_files_if_refused(resolved):
        migrate(resolved)
        _probe_write(resolved)
    return resolved


PROBE_BUSY_LIMIT_S = 60.0


def _probe_write(resolved: Path) -> None:
    """Write inside a transaction and roll it back; waits while other writers hold the lock
    (as the writer does), up to ``PROBE_BUSY_LIMIT_S``."""
    conn: sqlite3.Connection | None = None
    deadline = time.monotonic() + PROBE_BUSY_LIMIT_S
    try:
        conn = schema.connect(resolved)
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if not files.is_busy(exc) or time.monotonic() > deadline:
                    raise
        try:
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(schema.SCHEMA_VERSION),),
            )
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise files.store_error(exc, resolved, writing=True) from exc
    finally:
        if conn is not None:
            conn.close()


def _stored_version(path: Path) -> int | None:
    """The version of ``path`` read without writing, None when it cannot be read."""
    try:
        conn, _ = files.connect_reader(path)
    except StoreError:
        return None
    try:
        return read_version(conn)
    except (sqlite3.Error, StoreError):
        return None
    finally:
        conn.close()


def _read(conn: sqlite3.Connection, path: Path) -> int | None:
    try:
        return read_version(conn, path)
    except sqlite3.Error as exc:
        raise files.store_error(exc, path, writing=False) from exc


def _migrate(path: Path) -> tuple[int | None, int]:
    conn = schema.connect(path)
    try:
        version = read_version(conn, path)
        check_version(version, path)
        if version == schema.SCHEMA_VERSION:
            _ensure_wal(conn)
            return version, version
        if version is None:  # only takes effect on a file without pages yet
            conn.execute(f"PRAGMA page_size = {schema.PAGE_SIZE}")
        _ensure_wal(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = read_version(conn, path)
            check_version(version, path)
            if version is None:
                schema.create_tables(conn)
            else:
                _upgrade(conn, version)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    if version is not None and version != schema.SCHEMA_VERSION:
        log(
            logging.INFO,
            LOG_SERVICE_SQLITE_MIGRATED,
            "migrated %s from schema version %s to %s",
            path,
            version,
            schema.SCHEMA_VERSION,
        )
    return version, schema.SCHEMA_VERSION


def _upgrade(conn: sqlite3.Connection, version: int) -> None:
    """Apply each step from ``version`` to the current one (version 0 goes straight there)."""
    while version != schema.SCHEMA_VERSION:
        step = UPGRADES.get(version)
        if step is None:  # pragma: no cover - every version below the current has a step
            raise StoreError(f"no migration from schema version {version}")
        step(conn)
        version = read_version(conn) or 0


def _ensure_wal(conn: sqlite3.Connection) -> None:
    mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    if mode != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
