"""Stopping workers that another live kernel on this machine owns.

First the request goes through the database (``workers.stop_requested``): the owner's lease
thread acts on it within a tick, and the owner, which holds the workers' pipes, drains and
commits their last telemetry. An owner that does not act (hung in a long cell, suspended)
renews no lease either: then this process ends the workers itself, as ``stop()`` does, with
SIGTERM (the worker finishes its step and reports ``stopped``) and after a grace SIGKILL,
each only after checking that the pid is still that worker (its process start time). The
owner records the end when it next runs; until then the statuses say ``running``, and this
raises ``TimeoutError`` saying what was done.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from nbtrain.procinfo import process_alive, this_host
from nbtrain.statuses import FINAL_STATUSES
from nbtrain.store import schema
from nbtrain.store.writer import acquire_writer

POLL_S = 0.1
# The owner renews its lease every half second; this long without a renewal after the
# request means it is not acting on it.
OWNER_SILENT_S = 2.0
# After the owner had the caller's timeout: this long to record what it did.
OWNER_GRACE_S = 5.0
# SIGTERM asks a worker to finish its step and stop; this long later, SIGKILL.
TERM_GRACE_S = 2.0

Statuses = Callable[[], dict[str, str]]


def request_stop(db: Path, run_id: str, worker_ids: list[str]) -> None:
    """Ask the owning kernel, through the database, to stop these workers."""
    now = time.time()

    def mark(conn: sqlite3.Connection) -> None:
        conn.executemany(
            "UPDATE workers SET stop_requested = ? WHERE run_id = ? AND worker_id = ? "
            "AND status IN ('pending', 'running')",
            [(now, run_id, wid) for wid in worker_ids],
        )

    writer = acquire_writer(db)
    try:
        writer.call(mark, label=f"stop request {run_id}")
    finally:
        writer.release()


def stop_remote(
    db: Path, run_id: str, targets: list[str], timeout: float, statuses: Statuses
) -> dict[str, str]:
    """Stop ``targets`` (running workers of a run another live kernel owns); return the
    statuses once the database says they ended. ``TimeoutError`` if it does not say so in
    time, naming what was done meanwhile."""
    request_stop(db, run_id, targets)
    asked_at = time.time()
    done = _wait(targets, statuses, timeout + OWNER_GRACE_S, lambda: _silent(db, run_id, asked_at))
    if done is not None:
        return done
    ended = end_workers(db, run_id, targets)
    done = _wait(targets, statuses, OWNER_GRACE_S, lambda: False)
    if done is not None:
        return done
    current = statuses()
    what = (
        f"the workers' processes were ended from here ({', '.join(ended)})"
        if ended
        else "no worker process of it runs on this machine to end from here"
    )
    raise TimeoutError(
        f"run {run_id}: the kernel that owns the run did not act on the stop request within "
        f"{timeout} s; {what}, but the statuses stay as the owner last wrote them until it "
        f"runs again: {current}"
    )


def end_workers(db: Path, run_id: str, worker_ids: list[str]) -> list[str]:
    """SIGTERM, then SIGKILL after :data:`TERM_GRACE_S`, the local processes of these
    workers that are still the processes their rows name; ``"000001 (pid 123)"`` each."""
    procs = _local_procs(db, run_id, worker_ids)
    for pid, start in procs.values():
        _signal(pid, start, signal.SIGTERM)
    deadline = time.monotonic() + TERM_GRACE_S
    while time.monotonic() < deadline and any(process_alive(*p) for p in procs.values()):
        time.sleep(POLL_S)
    for pid, start in procs.values():
        _signal(pid, start, signal.SIGKILL)
    return [f"{wid} (pid {pid})" for wid, (pid, _) in procs.items()]


def _local_procs(db: Path, run_id: str, worker_ids: list[str]) -> dict[str, tuple[int, str]]:
    """``{worker_id: (pid, start token)}`` of the workers running as local processes on
    this machine; never a pid whose start time is unknown (it may be another process now)."""
    conn = schema.connect(db, readonly=True)
    try:
        host = conn.execute("SELECT owner_host FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        rows = conn.execute(
            "SELECT worker_id, pid, pid_start, backend FROM workers WHERE run_id = ? "
            "AND status IN ('pending', 'running')",
            (run_id,),
        ).fetchall()
    finally:
        conn.close()
    if host is None or host[0] not in (None, this_host()):
        return {}
    return {
        str(wid): (int(pid), str(start))
        for wid, pid, start, backend in rows
        if wid in worker_ids
        and backend in (None, "local")
        and isinstance(pid, int)
        and isinstance(start, str)
        and process_alive(pid, start)
    }


def _signal(pid: int, start: str, signum: signal.Signals) -> None:
    if process_alive(pid, start):  # checked again right before: the pid is still the worker
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _silent(db: Path, run_id: str, asked_at: float) -> bool:
    """Has the owner renewed no lease for :data:`OWNER_SILENT_S` since the request?"""
    now = time.time()
    if now - asked_at < OWNER_SILENT_S:
        return False
    conn = schema.connect(db, readonly=True)
    try:
        row = conn.execute("SELECT lease_at FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    finally:
        conn.close()
    lease_at = row[0] if row is not None else None
    return not isinstance(lease_at, int | float) or now - float(lease_at) > OWNER_SILENT_S


def _wait(
    targets: list[str], statuses: Statuses, seconds: float, give_up: Callable[[], bool]
) -> dict[str, str] | None:
    """The statuses once every target's is final, or None after ``seconds`` or once
    ``give_up()`` says waiting longer is pointless."""
    deadline = time.monotonic() + seconds
    while True:
        current = statuses()
        if all(current[w] in FINAL_STATUSES for w in targets):
            return current
        if time.monotonic() >= deadline or give_up():
            return None
        time.sleep(POLL_S)
