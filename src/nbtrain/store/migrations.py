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
:mod:`nbtrain.store.files`).
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from nbtrain.errors import ReadOnlyStoreError, SchemaVersionError, StoreError
from nbtrain.log_codes import LOG_SERVICE_SQLITE_MIGRATED
from nbtrain.logs import log
from nbtrain.store import files, schema
from nbtrain.store.chunks_write import INSERT_CHUNK, to_json

LEGACY_WORKER_ID = "000001"
MIGRATION_CHUNK = 4096


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


_UPGRADES: dict[int, Callable[[sqlite3.Connection], None]] = {}


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
        step = _UPGRADES.get(version)
        if step is None:  # pragma: no cover - every version below the current has a step
            raise StoreError(f"no migration from schema version {version}")
        step(conn)
        version = read_version(conn) or 0


def _ensure_wal(conn: sqlite3.Connection) -> None:
    mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    if mode != "wal":
        conn.execute("PRAGMA journal_mode = WAL")


def _select_list(
    legacy: list[str], target: tuple[str, ...], overrides: dict[str, str]
) -> tuple[str, str]:
    """Columns to insert and the matching SELECT expressions (missing columns become NULL)."""
    names, exprs = [], []
    for column in target:
        if column in overrides:
            expr = overrides[column]
        elif column in legacy:
            expr = f'"{column}"'
        else:
            continue
        names.append(column)
        exprs.append(expr)
    return ", ".join(names), ", ".join(exprs)


def _upgrade_legacy(conn: sqlite3.Connection) -> None:
    tables = schema.existing_tables(conn)
    legacy = {name: schema.table_columns(conn, name) for name in tables & set(schema.TABLE_NAMES)}
    if "worker_id" in legacy.get("episodes", []) or "workers" in legacy:
        raise StoreError(
            "database has nbtrain tables with worker ids but no schema version; "
            "it was not written by a released nbtrain and cannot be upgraded"
        )
    for name in legacy:
        conn.execute(f'ALTER TABLE "{name}" RENAME TO "_legacy_{name}"')
    schema.create_tables(conn)
    wid = f"'{LEGACY_WORKER_ID}'"
    # SQLite's date functions keep milliseconds: round to them, or '03:04:05' came back as
    # 03:04:04.999998808 (the Julian day's double rounding).
    seconds = (
        "CASE WHEN typeof({c}) = 'text' "
        "THEN ROUND((julianday({c}) - 2440587.5) * 86400.0, 3) ELSE {c} END"
    )
    if "runs" in legacy:
        cols, exprs = _select_list(
            legacy["runs"],
            schema.RUN_COLUMNS,
            {
                "created_at": seconds.format(c="created_at"),
                "status": "status" if "status" in legacy["runs"] else "'completed'",
            },
        )
        conn.execute(f"INSERT INTO runs({cols}) SELECT {exprs} FROM _legacy_runs")
    if "episodes" in legacy:
        cols, exprs = _select_list(
            legacy["episodes"],
            schema.EPISODE_COLUMNS,
            {
                "worker_id": wid,
                "episode_id": f"run_id || '-w' || {wid} || '-ep' || printf('%06d', ep_index)",
                "extras": "COALESCE(extras, '{}')" if "extras" in legacy["episodes"] else "'{}'",
            },
        )
        conn.execute(f"INSERT INTO episodes({cols}) SELECT {exprs} FROM _legacy_episodes")
    if "steps" in legacy:
        _chunk_steps(conn, "_legacy_steps", legacy["steps"], wid)
    # One worker row per legacy run that has telemetry, so summaries list it.
    conn.execute(
        f"""INSERT INTO workers(run_id, worker_id, status, started_at, ended_at)
        SELECT r.run_id, {wid}, COALESCE(r.status, 'completed'),
               (SELECT MIN(e.started_at) FROM episodes e WHERE e.run_id = r.run_id),
               (SELECT MAX(e.ended_at) FROM episodes e WHERE e.run_id = r.run_id)
        FROM runs r"""
    )
    conn.execute(
        f"""INSERT OR IGNORE INTO workers(run_id, worker_id, status)
        SELECT DISTINCT run_id, {wid}, 'completed' FROM episodes
        UNION SELECT DISTINCT run_id, {wid}, 'completed' FROM step_chunks"""
    )
    for name in legacy:
        conn.execute(f'DROP TABLE "_legacy_{name}"')


def _upgrade_v1(conn: sqlite3.Connection) -> None:
    """Version 1 -> 2: the row-per-step ``steps`` table becomes chunks behind a view."""
    if "steps" in schema.existing_tables(conn):
        conn.execute('ALTER TABLE steps RENAME TO "_v1_steps"')
    for ddl in schema.TABLES_DDL:
        if "step_chunks" in ddl:
            conn.execute(ddl)
    if "_v1_steps" in schema.existing_tables(conn):
        _chunk_steps(conn, "_v1_steps", schema.table_columns(conn, "_v1_steps"), "worker_id")
        conn.execute('DROP TABLE "_v1_steps"')
    _stamp(conn, 2)


def _upgrade_v2(conn: sqlite3.Connection) -> None:
    """Version 2 -> 3: lease and process-identity columns (NULL in existing rows)."""
    for table, column in schema.V3_COLUMNS:
        if column.split()[0] not in schema.table_columns(conn, table):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    _stamp(conn, 3)


def _upgrade_v3(conn: sqlite3.Connection) -> None:
    """Version 3 -> 4: chunks may span episodes (``last_ep``; NULL in existing one-episode
    chunks, whose rows stay as they are) and the view reads each row's episode."""
    if "last_ep" not in schema.table_columns(conn, "step_chunks"):
        conn.execute("ALTER TABLE step_chunks ADD COLUMN last_ep INTEGER")
    conn.execute("DROP VIEW IF EXISTS steps")
    conn.execute(schema.STEPS_VIEW_DDL)
    _stamp(conn, 4)


def _stamp(conn: sqlite3.Connection, version: int) -> None:
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(version),)
    )


_UPGRADES.update({0: _upgrade_legacy, 1: _upgrade_v1, 2: _upgrade_v2, 3: _upgrade_v3})


_decode_json = msgspec.json.decode


def _json_value(value: Any) -> Any:
    """A stored obs/action: JSON text (arrays) becomes its value, anything else stays."""
    if isinstance(value, str):
        try:
            return _decode_json(value)
        except msgspec.DecodeError:
            return value
    return value


def _json_extras(text: Any) -> Any:
    """Stored extras text as its value, so it is stored minified (as the view renders it)."""
    if text is None:
        return {}
    return _json_value(text)


def _chunk_steps(conn: sqlite3.Connection, table: str, columns: list[str], worker: str) -> None:
    """Copy a row-per-step table into ``step_chunks`` (one chunk per episode part)."""
    fields = [c if c in columns else "NULL" for c in schema.LEGACY_CHUNK_FIELDS]
    rows = conn.execute(
        f'SELECT run_id, {worker}, ep_index, {", ".join(fields)} FROM "{table}" '
        f"ORDER BY run_id, 2, ep_index, step_index"
    )
    conn.executemany(INSERT_CHUNK, _chunks(rows))


def _chunks(rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    for key, group in itertools.groupby(rows, key=lambda r: r[:3]):
        members = list(group)
        for start in range(0, len(members), MIGRATION_CHUNK):
            part = members[start : start + MIGRATION_CHUNK]
            steps = [
                [r[3], _json_value(r[4]), r[5], bool(r[6]), bool(r[7]), _json_value(r[8]),
                 _json_extras(r[9]), r[10]]
                for r in part
            ]  # fmt: skip
            yield (*key, part[0][3], len(part), to_json(steps))
