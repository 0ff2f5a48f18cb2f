"""Schema versions and in-place upgrades.

Version 0 is the legacy single-worker layout: ``runs(run_id, name, created_at, config)`` with
``created_at`` as ISO text or Unix seconds, and ``episodes`` / ``steps`` keyed by
``(run_id, ep_index[, step_index])`` without a ``worker_id``; legacy episode ids look like
``{run_id}-ep000003``. Upgrading gives every legacy row worker id ``000001``, rebuilds episode
ids as ``{run_id}-w000001-ep000003`` and adds a ``workers`` row per run.

Checking the version only reads; a file that is already current is never written.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from nbtrain.errors import SchemaVersionError, StoreError
from nbtrain.log_codes import LOG_SERVICE_SQLITE_MIGRATED
from nbtrain.logs import log
from nbtrain.store import schema

LEGACY_WORKER_ID = "000001"


def read_version(conn: sqlite3.Connection) -> int | None:
    """The schema version of the open file, or None when it holds no nbtrain tables."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version:
        return version
    tables = schema.existing_tables(conn)
    if not tables & {"runs", "episodes", "steps"}:
        return None
    return 0


def check_version(version: int | None, path: Path) -> None:
    if version is not None and version > schema.SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has store schema version {version}, but this nbtrain reads versions up to "
            f"{schema.SCHEMA_VERSION}; upgrade nbtrain to open it"
        )


def needs_migration(path: Path) -> bool:
    """True when ``path`` is missing, empty or older than this nbtrain (read-only check)."""
    if not path.exists() or path.stat().st_size == 0:
        return True
    with schema.file_gate(path):
        conn = schema.connect(path, readonly=True)
        try:
            version = read_version(conn)
        finally:
            conn.close()
    check_version(version, path)
    return version != schema.SCHEMA_VERSION


def migrate(path: str | Path) -> tuple[int | None, int]:
    """Create or upgrade the store at ``path`` in place; return ``(old, new)`` versions.

    ``old`` is None for a new file. Raises :class:`SchemaVersionError` for a newer file.
    Safe against a concurrent migration in another process (the check is repeated under the
    write lock).
    """
    path = Path(path).expanduser().resolve()
    with schema.file_gate(path):
        return _migrate(path)


def _migrate(path: Path) -> tuple[int | None, int]:
    conn = schema.connect(path)
    try:
        version = read_version(conn)
        check_version(version, path)
        if version == schema.SCHEMA_VERSION:
            _ensure_wal(conn)
            return version, version
        _ensure_wal(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = read_version(conn)
            check_version(version, path)
            if version is None:
                schema.create_tables(conn)
            elif version == 0:
                _upgrade_legacy(conn)
            elif version != schema.SCHEMA_VERSION:  # pragma: no cover - no v2 yet
                raise StoreError(f"no migration from schema version {version}")
            conn.execute("COMMIT")
        except BaseException:
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
    seconds = (
        "CASE WHEN typeof({c}) = 'text' THEN (julianday({c}) - 2440587.5) * 86400.0 ELSE {c} END"
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
        cols, exprs = _select_list(
            legacy["steps"],
            schema.STEP_COLUMNS,
            {
                "worker_id": wid,
                "extras": "COALESCE(extras, '{}')" if "extras" in legacy["steps"] else "'{}'",
            },
        )
        conn.execute(f"INSERT INTO steps({cols}) SELECT {exprs} FROM _legacy_steps")
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
        UNION SELECT DISTINCT run_id, {wid}, 'completed' FROM steps"""
    )
    for name in legacy:
        conn.execute(f'DROP TABLE "_legacy_{name}"')
