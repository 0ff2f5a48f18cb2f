"""After a fault: does the database still tell the truth? Read with plain ``sqlite3``."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any


def _read(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _step_counts(db: Path, run_id: str | None) -> Counter[tuple[str, str, int]]:
    """Steps stored per ``(run_id, worker_id, ep_index)``, counted row by row from the
    chunks (a chunk may span episodes; each row then ends with its ep_index); each chunk's
    ``n_steps`` and episode range are checked against its rows."""
    where, params = ("WHERE run_id = ?", (run_id,)) if run_id else ("", ())
    counts: Counter[tuple[str, str, int]] = Counter()
    chunks = _read(
        db, f"SELECT run_id, worker_id, ep_index, n_steps, last_ep, rows FROM step_chunks {where}",
        params,
    )  # fmt: skip
    for run, wid, ep_index, n_steps, last_ep, text in chunks:
        rows = json.loads(text)
        assert len(rows) == n_steps, f"chunk {run}/{wid}/{ep_index} says {n_steps} steps"
        if last_ep is None:
            counts[run, wid, ep_index] += len(rows)
            continue
        eps = [row[-1] for row in rows]
        lie = f"chunk {run}/{wid}/{ep_index} lies about its episodes"
        assert eps == sorted(eps), lie
        assert (eps[0], eps[-1]) == (ep_index, last_ep), lie
        counts.update((run, wid, ep) for ep in eps)
    return counts


def _episode_steps(db: Path, run_id: str | None) -> list[tuple[Any, ...]]:
    """``(run_id, worker_id, ep_index, length, steps stored)`` of each stored episode."""
    where, params = ("WHERE run_id = ?", (run_id,)) if run_id else ("", ())
    counts = _step_counts(db, run_id)
    episodes = _read(
        db, f"SELECT run_id, worker_id, ep_index, length FROM episodes {where}", params
    )
    return [(*row, counts[row[0], row[1], row[2]]) for row in episodes]


def orphan_steps(db: Path, run_id: str | None = None) -> list[tuple[str, str, int]]:
    """``(run_id, worker_id, ep_index)`` with stored steps but no stored episode: steps of
    episodes that never finished, which recovery must have removed (empty when it did)."""
    where, params = ("WHERE run_id = ?", (run_id,)) if run_id else ("", ())
    stored = set(_read(db, f"SELECT run_id, worker_id, ep_index FROM episodes {where}", params))
    return sorted(key for key in _step_counts(db, run_id) if key not in stored)


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
