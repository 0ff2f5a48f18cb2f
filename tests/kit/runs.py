"""Runs written with plain ``sqlite3`` into a real store file (made by ``migrate``), and row
counts read back with plain ``sqlite3``: the retention tests check nbtrain against these."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from nbtrain.ids import format_episode_id, is_run_id, new_run_id
from nbtrain.store import migrate

T0 = 1_700_000_000.0
TABLES = ("runs", "workers", "episodes", "step_chunks")


def make_db(path: Path) -> Path:
    migrate(path)
    return path


def add_run(
    db: Path,
    *,
    workers: int = 2,
    episodes: int = 3,
    steps: int = 4,
    status: str = "completed",
    pad: int = 0,
    run_id: str | None = None,
    folder_bytes: int = 0,
    reward: Any = None,
    name: str = "kit-run",
    created_at: float | None = None,
) -> str:
    """One run: ``workers`` workers of ``episodes`` episodes of ``steps`` steps each (one chunk
    per episode; each step's extras padded with ``pad`` characters), and its run folder with
    one worker file per worker plus ``folder_bytes`` of policy file. ``reward(wid, ep)`` gives
    each episode's total reward (default: the episode index)."""
    run_id = run_id or new_run_id()
    con = sqlite3.connect(db)
    try:
        with con:
            con.execute(
                "INSERT INTO runs(run_id, name, created_at, digest, config, status) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, name, created_at or T0, "d" * 64, "{}", status),
            )
            for w in range(1, workers + 1):
                wid = f"{w:06d}"
                con.execute(
                    "INSERT INTO workers(run_id, worker_id, status, exit_code, started_at, "
                    "ended_at) VALUES (?, ?, ?, 0, ?, ?)",
                    (run_id, wid, status, T0, T0 + 10),
                )
                for ep in range(episodes):
                    total = float(ep if reward is None else reward(wid, ep))
                    con.execute(
                        "INSERT INTO episodes(run_id, worker_id, ep_index, episode_id, "
                        "total_reward, length, terminated, truncated, seed, started_at, "
                        "ended_at, extras) "
                        "VALUES (?, ?, ?, ?, ?, ?, 1, 0, ?, ?, ?, '{}')",
                        (run_id, wid, ep, _episode_id(run_id, ep, wid), total, steps,
                         ep, T0 + ep, T0 + ep + 0.5),
                    )  # fmt: skip
                    rows = [
                        [i, i % 4, 0.0, i == steps - 1, False, i, {"e": 0.1, "p": "x" * pad},
                         T0 + ep + i / 1000]
                        for i in range(steps)
                    ]  # fmt: skip
                    con.execute(
                        "INSERT INTO step_chunks(run_id, worker_id, ep_index, first_step, "
                        "n_steps, rows) VALUES (?, ?, ?, 0, ?, ?)",
                        (run_id, wid, ep, steps, json.dumps(rows)),
                    )
    finally:
        con.close()
    if not is_run_id(run_id):
        return run_id  # only ULIDs name folders
    folder = db.parent / "nbtrain-runs" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    for w in range(1, workers + 1):
        (folder / f"worker-{run_id}-{w:06d}.json").write_text(json.dumps({"worker": w}))
    if folder_bytes:
        (folder / "policy-000001.pkl").write_bytes(os.urandom(folder_bytes))
    return run_id


def _episode_id(run_id: str, ep: int, wid: str) -> str:
    if is_run_id(run_id):
        return format_episode_id(run_id, ep, wid)
    return f"{run_id}-w{wid}-ep{ep:06d}"  # a hand-written id, as plain SQL may hold


def counts(db: Path, run_id: str, tables: tuple[str, ...] = TABLES) -> dict[str, int]:
    """Rows of ``run_id`` per table, read with plain sqlite3 (read-only; on a read-only
    mount, where no ``-shm`` file can be made, as an immutable file)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        con.execute("SELECT 1 FROM sqlite_master").fetchall()
    except sqlite3.OperationalError:
        con = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    try:
        return {
            t: con.execute(f'SELECT COUNT(*) FROM "{t}" WHERE run_id = ?', (run_id,)).fetchone()[0]
            for t in tables
        }
    finally:
        con.close()


def expected(workers: int, episodes: int) -> dict[str, int]:
    return {
        "runs": 1,
        "workers": workers,
        "episodes": workers * episodes,
        "step_chunks": workers * episodes,
    }


def sql(db: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()
