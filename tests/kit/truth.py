"""After a fault: does the database still tell the truth? Read with plain ``sqlite3``."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

_EPISODE_STEPS = """SELECT e.run_id, e.worker_id, e.ep_index, e.length, COALESCE(SUM(c.n_steps), 0)
    FROM episodes AS e LEFT JOIN step_chunks AS c
      ON c.run_id = e.run_id AND c.worker_id = e.worker_id AND c.ep_index = e.ep_index
    {where}
    GROUP BY e.run_id, e.worker_id, e.ep_index"""


def _read(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _episode_steps(db: Path, run_id: str | None) -> list[tuple[Any, ...]]:
    where, params = ("WHERE e.run_id = ?", (run_id,)) if run_id else ("", ())
    return _read(db, _EPISODE_STEPS.format(where=where), params)


def episodes_have_all_steps(db: Path, run_id: str | None = None) -> list[tuple[Any, ...]]:
    """Stored episodes whose steps are not all stored (empty when the store is honest)."""
    return [row for row in _episode_steps(db, run_id) if row[3] != row[4]]


def whole_episodes(db: Path, run_id: str | None = None) -> int:
    """Assert the file is intact and every stored episode has all its steps (runs that
    record every step); return how many episodes are stored."""
    assert _read(db, "PRAGMA integrity_check") == [("ok",)]
    found = _episode_steps(db, run_id)
    broken = [row for row in found if row[3] != row[4]]
    assert not broken, f"episodes without all their steps: {broken[:5]}"
    return len(found)


def no_live_rows(db: Path, run_id: str) -> None:
    """No worker of an ended run says it is pending or running."""
    live = _read(
        db,
        "SELECT worker_id, status FROM workers WHERE run_id = ? AND status IN (?, ?)",
        (run_id, "pending", "running"),
    )
    assert not live, f"rows that say a gone worker is live: {live}"
