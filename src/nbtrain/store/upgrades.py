"""The upgrade steps: what turns a store of each older schema version into the next one.

Kept apart from :mod:`nbtrain.store.migrations`, which decides whether and how to upgrade
(reading and checking the version, the one transaction, WAL, the write probe), because the
steps are the schema's history, a topic of their own that only grows: the legacy layout's
conversion (worker id ``LEGACY_WORKER_ID``, rebuilt episode ids), moving row-per-step tables
into chunks of at most ``MIGRATION_CHUNK`` steps, and the columns and view each later version
added. :data:`UPGRADES` maps a version to the step that upgrades it (see the versions in
:mod:`nbtrain.store.migrations`).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from nbtrain.errors import StoreError
from nbtrain.store import schema
from nbtrain.store.chunks_write import INSERT_CHUNK, to_json

__all__ = ["LEGACY_WORKER_ID", "MIGRATION_CHUNK", "UPGRADES"]

LEGACY_WORKER_ID = "000001"
MIGRATION_CHUNK = 4096


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


UPGRADES: dict[int, Callable[[sqlite3.Connection], None]] = {
    0: _upgrade_legacy,
    1: _upgrade_v1,
    2: _upgrade_v2,
    3: _upgrade_v3,
}


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
