"""Rows that outlived their kernel: found by any reader, corrected when the file can be written.

A run is owned by the kernel that launched (or last restarted) it; the ``runs`` row names it
(``owner_pid``, its start-time token ``owner_start``, ``owner_host``) and the owner renews
``lease_at`` while its workers go. Its workers exit within seconds of its death, so once it is
gone a ``pending``/``running`` worker row is a lie: readers report it ``failed`` with the reason,
write that correction (and drop the steps of the episodes it never finished) when they can,
and never fail or wait when they cannot (a read-only file, another writer holding the lock).

On the owner's machine the owner is checked by pid *and* start time (pids are reused); from
another machine only the lease tells, so a lease older than :data:`LEASE_TIMEOUT_S` counts as
a dead owner there.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from nbtrain.procinfo import process_alive, this_host
from nbtrain.statuses import LIVE_STATUSES, run_status_of
from nbtrain.store import schema

if TYPE_CHECKING:
    import pandas as pd

LEASE_TIMEOUT_S = 4.0
# A correction never waits long for the write lock: readers must not block.
CORRECTION_BUSY_MS = 100


@dataclass
class RunFix:
    """A dead owner's run as it really is: the corrected statuses, written or not."""

    run_id: str
    run_status: str
    workers: dict[str, str] = field(default_factory=dict)  # worker id -> error line
    written: bool = False
    status: str = "failed"  # what the workers in ``workers`` really are
    # worker id -> (started_at, ended_at): when a dead owner's worker really stopped (its
    # last sign of life), not when a reader noticed, which may be days later.
    spans: dict[str, tuple[float | None, float]] = field(default_factory=dict)


def owner_text(pid: object, host: object) -> str:
    return f"pid {pid} on {host}" if host else f"pid {pid}"


def kernel_ended_error(pid: object, host: object) -> str:
    return f"the kernel that ran it ({owner_text(pid, host)}) ended"


def owner_alive(
    pid: int | None, start: str | None, host: str | None, lease_at: float | None, now: float
) -> bool:
    """Is the owning kernel of a run still there?"""
    if pid is None:
        return False
    if host is None or host == this_host():
        return process_alive(int(pid), start)
    return lease_at is not None and now - float(lease_at) <= LEASE_TIMEOUT_S


def _legacy_worker_alive(pid: object, start: object) -> bool:
    """Rows written before owners were recorded: the worker process itself must be there."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if not process_alive(pid, start if isinstance(start, str) else None):
        return False
    if start is None:  # no start token: at least make sure it is an nbtrain worker
        try:
            return b"nbtrain.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return True
    return True


_CANDIDATES = """
SELECT r.run_id, r.owner_pid, r.owner_start, r.owner_host, r.lease_at
FROM runs AS r
WHERE (r.status IN ('pending', 'running')
       OR EXISTS (SELECT 1 FROM workers AS w
                  WHERE w.run_id = r.run_id AND w.status IN ('pending', 'running')))
"""


def find_dead(conn: sqlite3.Connection, run_id: str | None = None) -> list[RunFix]:
    """The runs whose owner is gone although rows still say they go."""
    sql, params = _CANDIDATES, ()
    if run_id is not None:
        sql, params = sql + " AND r.run_id = ?", (run_id,)  # type: ignore[assignment]
    now = time.time()
    fixes = []
    for rid, pid, start, host, lease_at in conn.execute(sql, params).fetchall():
        workers = conn.execute(
            "SELECT worker_id, status, pid, pid_start FROM workers WHERE run_id = ?", (rid,)
        ).fetchall()
        if pid is not None:
            if owner_alive(pid, start, host, lease_at, now):
                continue
        elif any(
            s in LIVE_STATUSES and _legacy_worker_alive(wpid, wstart)
            for _, s, wpid, wstart in workers
        ):
            continue
        error = kernel_ended_error(pid, host) if pid is not None else "its kernel ended"
        dead = {str(w): error for w, s, _, _ in workers if s in LIVE_STATUSES}
        statuses = ["failed" if w in dead else str(s) for w, s, _, _ in workers]
        spans = {w: _last_alive(conn, str(rid), w, lease_at, now) for w in dead}
        fixes.append(RunFix(str(rid), run_status_of(statuses), dead, spans=spans))
    return fixes


def _last_alive(
    conn: sqlite3.Connection, run_id: str, worker_id: str, lease_at: object, now: float
) -> tuple[float | None, float]:
    """A dead owner's worker: its start and its last sign of life, the later of the owner's
    last lease renewal and the worker's last stored episode (its workers exit within
    seconds of the owner). Without either, the moment the death was noticed."""
    started, last_episode = conn.execute(
        "SELECT (SELECT started_at FROM workers WHERE run_id = :r AND worker_id = :w), "
        "(SELECT MAX(ended_at) FROM episodes WHERE run_id = :r AND worker_id = :w)",
        {"r": run_id, "w": worker_id},
    ).fetchone()
    signs = [float(t) for t in (lease_at, last_episode, started) if isinstance(t, int | float)]
    return (float(started) if isinstance(started, int | float) else None,
            min(now, max(signs)) if signs else now)  # fmt: skip


def next_episode(conn: sqlite3.Connection, run_id: str, worker_id: str) -> int:
    """The episode a restart of the worker begins with: the one after its last stored."""
    last = conn.execute(
        "SELECT MAX(ep_index) FROM episodes WHERE run_id = ? AND worker_id = ?",
        (run_id, worker_id),
    ).fetchone()[0]
    return 0 if last is None else int(last) + 1


def discard_unfinished(conn: sqlite3.Connection, run_id: str, worker_id: str) -> int:
    """Delete the steps of episodes the worker never finished (they are not episodes, and
    a restart would collide with them); return its next episode index."""
    next_index = next_episode(conn, run_id, worker_id)
    conn.execute(
        "DELETE FROM step_chunks WHERE run_id = ? AND worker_id = ? AND ep_index >= ?",
        (run_id, worker_id, next_index),
    )
    _cut_last_chunk(conn, run_id, worker_id, next_index)
    return next_index


# A step row as readers decode it: eight step fields, then its episode.
_decode_rows = msgspec.json.Decoder(list[tuple[Any, Any, Any, Any, Any, Any, Any, Any, int]]).decode


def _cut_last_chunk(conn: sqlite3.Connection, run_id: str, worker_id: str, cut: int) -> None:
    """Drop the steps of episodes from ``cut`` on out of the chunk that begins before
    ``cut``, when it reaches past it. Chunks do not overlap, so only the worker's last chunk
    that begins before ``cut`` can; its steps are in order, so what stays is a prefix."""
    row = conn.execute(
        "SELECT ep_index, first_step, last_ep, rows FROM step_chunks "
        "WHERE run_id = ? AND worker_id = ? AND ep_index < ? "
        "ORDER BY ep_index DESC, first_step DESC LIMIT 1",
        (run_id, worker_id, cut),
    ).fetchone()
    if row is None or row[2] is None:  # none, or one episode before the cut
        return
    ep_index, first_step, _, text = row
    key = (run_id, worker_id, ep_index, first_step)
    where = "WHERE run_id = ? AND worker_id = ? AND ep_index = ? AND first_step = ?"
    try:
        raws = msgspec.json.decode(text, type=list[msgspec.Raw])
        episodes = [row[-1] for row in _decode_rows(text)]
    except msgspec.DecodeError:
        return  # readers skip a chunk they cannot decode; it is left for inspection
    keep = bisect_left(episodes, cut)
    if keep == len(raws):
        return  # nothing past the cut (last_ep is not trusted for that: one decode a cut)
    if keep == 0:
        conn.execute(f"DELETE FROM step_chunks {where}", key)
        return
    text = b"[" + b",".join(raws[:keep]) + b"]"
    conn.execute(
        f"UPDATE step_chunks SET n_steps = ?, last_ep = ?, rows = ? {where}",
        (keep, episodes[keep - 1], text.decode(), *key),
    )


def _write(conn: sqlite3.Connection, fix: RunFix, owner: tuple[object, ...]) -> bool:
    """Commit one correction unless the run changed hands meanwhile."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(
            "SELECT owner_pid, owner_start, owner_host FROM runs WHERE run_id = ?", (fix.run_id,)
        ).fetchone()
        if row is None or tuple(row) != owner:
            conn.execute("ROLLBACK")
            return False
        now = time.time()
        for wid, error in fix.workers.items():
            ended = fix.spans[wid][1] if wid in fix.spans else now
            conn.execute(
                "UPDATE workers SET status = 'failed', error = ?, "
                "ended_at = COALESCE(ended_at, ?) "
                "WHERE run_id = ? AND worker_id = ? AND status IN ('pending', 'running')",
                (error, ended, fix.run_id, wid),
            )
            discard_unfinished(conn, fix.run_id, wid)
        conn.execute("UPDATE runs SET status = ? WHERE run_id = ?", (fix.run_status, fix.run_id))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return True


# Statuses an owner in this process knows but could not write yet (a failed database):
# ``source(path, run_id) -> fixes``, registered by the dispatcher (the store never imports it).
_MEMORY_SOURCES: list[Callable[[Path, str | None], list[RunFix]]] = []


def add_memory_source(source: Callable[[Path, str | None], list[RunFix]]) -> None:
    _MEMORY_SOURCES.append(source)


def settle(path: Path, run_id: str | None = None, *, write: bool = True) -> list[RunFix]:
    """The corrections of dead owners' runs (see :func:`settle_file`), and the statuses that
    an owner in this process holds but could not write."""
    fixes = settle_file(path, run_id, write=write)
    for source in _MEMORY_SOURCES:
        fixes.extend(source(path, run_id))
    return fixes


def settle_file(path: Path, run_id: str | None = None, *, write: bool = True) -> list[RunFix]:
    """Find the runs of dead owners in ``path`` and correct them where the file allows.

    Returns the corrections; ``written`` says whether each is in the file. Never raises for
    a file that cannot be written, and waits at most :data:`CORRECTION_BUSY_MS` for a lock.
    """
    from nbtrain.store.files import connect_reader

    try:
        conn, _ = connect_reader(path)
    except Exception:  # a file that cannot be read is the reader's error to report
        return []
    try:
        if "owner_pid" not in schema.table_columns(conn, "runs"):
            return []
        fixes = find_dead(conn, run_id)
        owners = {
            fix.run_id: tuple(
                conn.execute(
                    "SELECT owner_pid, owner_start, owner_host FROM runs WHERE run_id = ?",
                    (fix.run_id,),
                ).fetchone()
            )
            for fix in fixes
        }
    except sqlite3.Error:
        return []
    finally:
        conn.close()
    if not fixes or not write or not os.access(path, os.W_OK):
        return fixes
    try:
        wconn = sqlite3.connect(
            schema.uri_for(path, readonly=False).replace("mode=rwc", "mode=rw"),
            uri=True,
            timeout=CORRECTION_BUSY_MS / 1000,
            isolation_level=None,
        )
    except sqlite3.Error:
        return fixes
    try:
        wconn.execute(f"PRAGMA busy_timeout = {CORRECTION_BUSY_MS}")
        for fix in fixes:
            with contextlib.suppress(sqlite3.Error):
                fix.written = _write(wconn, fix, owners[fix.run_id])
    finally:
        wconn.close()
    return fixes


def patch(frame: pd.DataFrame, fixes: list[RunFix], *, by_worker: bool) -> pd.DataFrame:
    """Apply the corrections that could not be written to a frame read from the file.

    ``by_worker``: the frame has one row per worker of one run (``workers``, a summary);
    otherwise one row per run (``runs``)."""
    pending = [fix for fix in fixes if not fix.written]
    if not pending or frame.empty or "status" not in frame:
        return frame
    frame = frame.copy()
    for fix in pending:
        if not by_worker:
            frame.loc[frame["run_id"] == fix.run_id, "status"] = fix.run_status
            continue
        if "run_id" in frame and not (frame["run_id"] == fix.run_id).any():
            continue
        for wid, error in fix.workers.items():
            rows = frame["worker_id"].astype(str) == wid
            frame.loc[rows, "status"] = fix.status
            if "error" in frame:
                frame.loc[rows, "error"] = error
            if wid not in fix.spans:
                continue
            started, ended = fix.spans[wid]
            if "ended_at" in frame:
                import pandas as pd  # the frame is one: no new import

                dated = frame["ended_at"].dtype.kind == "M"
                frame.loc[rows, "ended_at"] = (
                    pd.Timestamp(ended, unit="s", tz="UTC") if dated else ended
                )
            if "wall_time_s" in frame and started is not None:  # it counted up to now
                frame.loc[rows, "wall_time_s"] = ended - started
    return frame
