"""Stopping workers that another live kernel owns.

First the request goes through the database (``workers.stop_requested``): the owner's lease
thread acts on it within a tick, and the owner, which holds the workers' pipes, drains and
commits their last telemetry. An owner on this machine that does not act (suspended, or its
process starved) renews no lease either: then this process ends the workers itself, as
``stop()`` does, with SIGTERM (the worker finishes its step and reports ``stopped``) and
after a grace SIGKILL, sent to the worker's process group (what its agent or environment
started goes too), each only after checking that the pid is still that worker (its process
start time). Only local workers are ended so; an owner on another host, or Ray actors, are
only asked. Once such a process is gone, this writes its row ``stopped``: no row goes on
saying ``running`` for it while the owner does not act; the owner records the same end, and
whatever the worker sent before it (still in the pipe), when it runs again. (POSIX
signals.)
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from nbtrain.dispatch.held import update_worker
from nbtrain.procinfo import process_alive, this_host
from nbtrain.statuses import FINAL_STATUSES, LIVE_STATUSES, run_status_of
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


def stop_was_requested(conn: sqlite3.Connection, run_id: str, worker_id: str) -> bool:
    """Has anyone asked, through the database, for this worker to stop?"""
    row = conn.execute(
        "SELECT stop_requested FROM workers WHERE run_id = ? AND worker_id = ?",
        (run_id, worker_id),
    ).fetchone()
    return row is not None and row[0] is not None


def stop_remote(
    db: Path, run_id: str, targets: list[str], timeout: float, statuses: Statuses
) -> dict[str, str]:
    """Stop ``targets`` (running workers of a run another live kernel owns); return the
    statuses once the database says they ended. ``TimeoutError`` if it does not say so in
    time, naming what was done meanwhile."""
    request_stop(db, run_id, targets)
    asked_at = time.time()
    local = _owner_host(db, run_id) in (None, this_host())
    # an owner elsewhere is only asked: its workers are not here, its clock may differ
    silent = (lambda: _silent(db, run_id, asked_at)) if local else (lambda: False)
    done = _wait(targets, statuses, timeout + OWNER_GRACE_S, silent)
    if done is not None:
        return done
    ended = end_workers(db, run_id, targets) if local else {}
    record_ended(db, run_id, ended)
    done = _wait(targets, statuses, OWNER_GRACE_S, lambda: False)
    if done is not None:
        return done
    what = (
        f"the processes of {', '.join(f'{w} (pid {p})' for w, (p, _) in ended.items())} were "
        "ended from here"
        if ended
        else "none of them is a local process of this machine that could be ended from here"
    )
    raise TimeoutError(
        f"run {run_id}: the kernel that owns the run did not act on the stop request within "
        f"{timeout} s; {what}; the others' statuses stay as the owner last wrote them until "
        f"it runs again: {statuses()}"
    )


def end_workers(db: Path, run_id: str, worker_ids: list[str]) -> dict[str, tuple[int, str]]:
    """SIGTERM, then SIGKILL after :data:`TERM_GRACE_S`, the local processes of these
    workers that are still the processes their rows name; ``{worker_id: (pid, start)}`` of
    those signalled (a process this user may not signal is left alone)."""
    procs = _local_procs(db, run_id, worker_ids)
    signalled = {wid: p for wid, p in procs.items() if _signal(*p, signal.SIGTERM)}
    _wait_gone(signalled.values(), TERM_GRACE_S)
    for pid, start in signalled.values():
        _signal(pid, start, signal.SIGKILL)
    _wait_gone(signalled.values(), TERM_GRACE_S)  # a kill is delivered, not instant
    return signalled


def _wait_gone(procs: Iterable[tuple[int, str]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(process_alive(*p) for p in procs):
        time.sleep(POLL_S / 10)


def record_ended(db: Path, run_id: str, ended: dict[str, tuple[int, str]]) -> None:
    """Write ``stopped`` for the workers ended from here whose processes are gone: their
    owner is not acting, so no row may go on saying ``running`` for them (the owner records
    the same end when it runs again: a stop was requested). Only a row that still names
    that process and still says ``pending``/``running`` is written."""
    gone = {wid: proc for wid, proc in ended.items() if not process_alive(*proc)}
    if not gone:
        return
    now = time.time()

    def write(conn: sqlite3.Connection) -> None:
        for wid, (pid, start) in gone.items():
            row = conn.execute(
                "SELECT status, pid, pid_start FROM workers WHERE run_id = ? AND worker_id = ?",
                (run_id, wid),
            ).fetchone()
            if row is None or row[0] not in LIVE_STATUSES or (row[1], row[2]) != (pid, start):
                continue  # the owner recorded its end meanwhile, or started it again
            # Its unfinished episode's steps stay (not visible as episodes): the rest of
            # that episode may still be in the owner's pipe, and dropping steps here would
            # leave an episode row without them when the owner writes it. The owner drops
            # them when it records the end; a restart drops them first.
            update_worker(conn, run_id, wid, status="stopped", ended_at=now)
        statuses = [str(r[0]) for r in conn.execute(
            "SELECT status FROM workers WHERE run_id = ?", (run_id,))]  # fmt: skip
        if all(s in FINAL_STATUSES for s in statuses):
            conn.execute(
                "UPDATE runs SET status = ? WHERE run_id = ?", (run_status_of(statuses), run_id)
            )

    writer = acquire_writer(db)
    try:
        writer.call(write, label=f"workers of {run_id} ended from another process")
    finally:
        writer.release()


def _local_procs(db: Path, run_id: str, worker_ids: list[str]) -> dict[str, tuple[int, str]]:
    """``{worker_id: (pid, start token)}`` of the workers running as local processes on
    this machine; never a pid whose start time is unknown (it may be another process now)."""
    if _owner_host(db, run_id) not in (None, this_host()):
        return {}
    rows = schema.read_rows(
        db,
        "SELECT worker_id, pid, pid_start, backend FROM workers WHERE run_id = ? "
        "AND status IN ('pending', 'running')",
        (run_id,),
    )
    return {
        str(wid): (int(pid), str(start))
        for wid, pid, start, backend in rows
        if wid in worker_ids
        and backend in (None, "local")
        and isinstance(pid, int)
        and isinstance(start, str)
        and process_alive(pid, start)
    }


def _signal(pid: int, start: str, signum: signal.Signals) -> bool:
    """Signal the worker's process group (a local worker leads its own session, as the
    owner starts it), or the process alone if it leads none; False if it could not."""
    if not process_alive(pid, start):  # checked again right before: still the worker
        return False
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):  # gone, or another user's: not ours
        return False
    return True


def _owner_host(db: Path, run_id: str) -> str | None:
    rows = schema.read_rows(db, "SELECT owner_host FROM runs WHERE run_id = ?", (run_id,))
    return None if not rows or rows[0][0] is None else str(rows[0][0])


def _silent(db: Path, run_id: str, asked_at: float) -> bool:
    """Has the owner renewed no lease for :data:`OWNER_SILENT_S` since the request?"""
    now = time.time()
    if now - asked_at < OWNER_SILENT_S:
        return False
    rows = schema.read_rows(db, "SELECT lease_at FROM runs WHERE run_id = ?", (run_id,))
    lease_at = rows[0][0] if rows else None
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
