"""Controlling a run from a process that does not own it, through the database.

Stopping is :mod:`nbtrain.dispatch.remote_stop`. A restart needs an owner: once the owner
is gone the caller takes the run over, rebuilding every worker's config from the run's
stored config (checked against its digest), never from a run-folder file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrain.dispatch.backend import resolve_backend
from nbtrain.dispatch.restart_rules import check_episodes_left, check_restartable
from nbtrain.dispatch.runfiles import run_dir_for
from nbtrain.dispatch.session import RunSession
from nbtrain.dispatch.start import decode_agent
from nbtrain.errors import RunError, UnknownRunError
from nbtrain.procinfo import own_identity
from nbtrain.store import schema
from nbtrain.store.files import existing_db
from nbtrain.store.liveness import next_episode, owner_alive, owner_text, settle
from nbtrain.store.writer import acquire_writer

if TYPE_CHECKING:
    from nbtrain.config import TrainConfig
    from nbtrain.store import TelemetryStore
    from nbtrain.worker.config_file import WorkerConfig


def open_db(db: str | os.PathLike[str]) -> Path:
    """The absolute path of an existing database file (never created here)."""
    return existing_db(db)


def _run_row(db: Path, run_id: str) -> tuple[object, ...]:
    rows = schema.read_rows(
        db,
        "SELECT config, digest, agent_pickle, owner_pid, owner_start, owner_host, lease_at "
        "FROM runs WHERE run_id = ?",
        (run_id,),
    )
    if not rows:
        raise UnknownRunError(f"no run {run_id!r} in {db}", run_id=run_id, path=db)
    return tuple(rows[0])


def stored_config(db: Path, run_id: str) -> TrainConfig:
    """The run's TrainConfig from its ``runs`` row; its digest must match the stored one."""
    from nbtrain.config import TrainConfig

    payload, digest, pickled, *_ = _run_row(db, run_id)
    if not isinstance(payload, str):
        raise RunError(f"run {run_id} has no stored config in {db}; it cannot be restarted")
    data = json.loads(payload)
    agent = decode_agent(pickled if isinstance(pickled, str) else None, data.get("agent"))
    config = TrainConfig.from_payload(data, agent=agent)
    if config.digest != digest:
        raise RunError(
            f"run {run_id}: the stored config does not match its digest "
            f"({config.digest[:12]} != {str(digest)[:12]}); refusing to restart from it"
        )
    return config


def stored_agent(db: Path, run_id: str) -> object:
    """The run's notebook-defined agent, unpickled from its row (None for a built-in or an
    importable agent, which the config names)."""
    payload, _, pickled, *_ = _run_row(db, run_id)
    if not isinstance(pickled, str) or not isinstance(payload, str):
        return None
    return decode_agent(pickled, json.loads(payload).get("agent"))


def stored_worker_config(db: Path, run_id: str, worker_id: str, run_dir: Path) -> WorkerConfig:
    for wc in stored_config(db, run_id).worker_configs(run_id=run_id, run_dir=str(run_dir)):
        if wc.worker_id == worker_id:
            return wc
    raise RunError(f"worker {worker_id!r} is not in the stored config of run {run_id}")


def take_over(db: Path, run_id: str, worker_id: str) -> RunSession:
    """Become the owner of a run whose owning kernel is gone, to restart ``worker_id``;
    ``RunError`` if the owner is alive, or if that worker cannot be restarted (checked
    before the run is claimed: a refused restart leaves the run's owner as it was)."""
    settle(db, run_id)
    _, _, _, pid, start, host, lease_at = _run_row(db, run_id)
    me = own_identity()
    if (pid, start, host) != me and owner_alive(
        pid if isinstance(pid, int) else None,
        start if isinstance(start, str) else None,
        host if isinstance(host, str) else None,
        lease_at if isinstance(lease_at, float | int) else None,
        time.time(),
    ):
        raise RunError(
            f"run {run_id} is owned by a live kernel ({owner_text(pid, host)}); restart its "
            "workers there, or here once that kernel has exited"
        )
    run_dir = run_dir_for(db, run_id)
    configs = {
        wc.worker_id: wc
        for wc in stored_config(db, run_id).worker_configs(run_id=run_id, run_dir=str(run_dir))
    }
    rows = schema.read_rows(
        db, "SELECT worker_id, status, backend FROM workers WHERE run_id = ?", (run_id,)
    )
    statuses = {str(w): str(s) for w, s, _ in rows if w in configs}
    check_restartable(run_id, statuses, worker_id)
    conn = schema.connect(db, readonly=True)
    try:
        next_index = next_episode(conn, run_id, worker_id)
    finally:
        conn.close()
    check_episodes_left(run_id, worker_id, next_index, configs[worker_id].episodes)
    backends = {str(b) for _, _, b in rows if b}
    backend = resolve_backend("ray" if backends == {"ray"} else "local")

    def claim(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE runs SET owner_pid = ?, owner_start = ?, owner_host = ?, lease_at = ? "
            "WHERE run_id = ?",
            (*me, time.time(), run_id),
        )

    writer = acquire_writer(db)
    try:
        writer.call(claim, label=f"take over {run_id}")
    finally:
        writer.release()
    return RunSession(run_id, db, run_dir, configs, backend, statuses=statuses)


def stored_statuses(store: TelemetryStore, run_id: str) -> dict[str, str]:
    """The statuses in the file, in the config's worker order (as the owner shows them)."""
    frame = store.workers(run_id)
    found = {str(w): str(s) for w, s in zip(frame["worker_id"], frame["status"], strict=True)}
    order = _worker_order(store, run_id)
    return {w: found[w] for w in sorted(found, key=lambda w: (order.get(w, len(order)), w))}


# A run's config never changes: its worker order is read once (status() is polled).
_ORDERS: dict[tuple[Path, str], dict[str, int]] = {}


def _worker_order(store: TelemetryStore, run_id: str) -> dict[str, int]:
    key = (store.path, run_id)
    order = _ORDERS.get(key)
    if order is None:
        config = store.run(run_id)["config"]
        listed = config.get("workers") if isinstance(config, dict) else None
        order = {
            w["worker_id"]: i
            for i, w in enumerate(listed if isinstance(listed, list) else [])
            if isinstance(w, dict) and isinstance(w.get("worker_id"), str)
        }
        if len(_ORDERS) >= 256:
            _ORDERS.clear()
        _ORDERS[key] = order
    return order
