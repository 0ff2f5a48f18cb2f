"""Rows for the writer's transaction, and inserting many of them per statement.

``executemany`` runs its statement once a row, and each run crosses from Python to SQLite
and back (the GIL given up and taken again); a multi-row ``INSERT`` of :data:`BULK_ROWS`
rows crosses once for all of them (episode rows: 2.5 instead of 3.3 us a row).
"""

from __future__ import annotations

import sqlite3
from functools import cache
from itertools import chain
from typing import TYPE_CHECKING, Any

from nbtrain.store.chunks_write import INSERT_CHUNK, INSERT_EPISODE, INSERT_SPANNING_CHUNK

if TYPE_CHECKING:
    from nbtrain.store.ops import Op

__all__ = ["BULK_ROWS", "BadRowInBulk", "Rows", "add_rows", "insert_in_bulk"]


class Rows:
    """A run of rows for one ``INSERT``: step chunks or episodes."""

    def __init__(self, sql: str, rows: list[tuple[Any, ...]], label: str) -> None:
        self.sql, self.rows, self.label = sql, rows, label

    def weight(self, row: tuple[Any, ...]) -> int:
        """Stored rows a row stands for: its steps for a chunk (``n_steps``), else one."""
        return int(row[4]) if self.sql != INSERT_EPISODE else 1

    def total(self) -> int:
        if self.sql != INSERT_EPISODE:
            return sum(row[4] for row in self.rows)
        return len(self.rows)


class BadRowInBulk(Exception):
    """A run of rows inserted without a savepoint hit a bad row: redo the batch carefully."""


# Rows per multi-row INSERT: 64 episode rows are 768 parameters, under the 999 that SQLite
# allowed before 3.32.
BULK_ROWS = 64


def insert_in_bulk(conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` with ``sql`` (an ``INSERT ... VALUES (?, ...)`` of one row), BULK_ROWS
    rows a statement. ``executemany`` runs the statement once a row, and each run crosses
    from Python to SQLite and back (the GIL given up and taken again): inserting episode
    rows took 2.5 instead of 3.3 us a row this way. ``OR FAIL`` keeps SQLite from opening a
    statement journal for a statement of many rows; the caller rolls the whole transaction
    back on any error anyway."""
    whole = len(rows) - len(rows) % BULK_ROWS
    if whole and len(set(map(len, rows))) == 1:  # else the values would shift
        bulk = _bulk_sql(sql)
        for first in range(0, whole, BULK_ROWS):
            conn.execute(bulk, tuple(chain.from_iterable(rows[first : first + BULK_ROWS])))
        rows = rows[whole:]
    if rows:
        conn.executemany(sql, rows)


@cache
def _bulk_sql(sql: str) -> str:
    head, values = sql.split(" VALUES ")
    head = head.replace("INSERT INTO", "INSERT OR FAIL INTO", 1)
    return f"{head} VALUES {', '.join([values] * BULK_ROWS)}"


def add_rows(
    items: list[Rows | Op], chunks: list[tuple[Any, ...]], episodes: list[tuple[Any, ...]]
) -> None:
    """Append an op's rows to ``items`` as runs of one statement each: chunks that span
    episodes and one-episode chunks (which leave ``last_ep`` out) go in separately."""
    if chunks:
        one = [row for row in chunks if len(row) == 6]  # one episode each: last_ep NULL
        if len(one) < len(chunks):
            items.append(Rows(INSERT_SPANNING_CHUNK, [r for r in chunks if len(r) == 7], "steps"))
        if one:
            items.append(Rows(INSERT_CHUNK, one, "steps"))
    if episodes:
        items.append(Rows(INSERT_EPISODE, episodes, "episodes"))
