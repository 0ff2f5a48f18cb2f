"""Starting a run: all or nothing, in the order that keeps the database the truth.

1. Validate the config and check the database (a ``StoreError`` naming the path before any
   file or row exists).
2. Commit the ``runs`` row, naming this kernel as its owner, and one ``pending`` row per
   worker, in one transaction.
3. Write the run folder (``0700``) and the worker files (``0600``), then start the workers.
   If one cannot start, those that did are stopped, the run ends ``failed`` with the reason,
   and :class:`~nbtrain.errors.RunError` names the run id.
"""

from __future__ import annotations

import base64
import logging
import os
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrain.dispatch.backend import Backend, resolve_backend
from nbtrain.dispatch.runfiles import (
    check_runs_root,
    make_run_dir,
    run_dir_for,
    worker_config_path,
    write_worker_config,
)
from nbtrain.dispatch.session import RunSession
from nbtrain.errors import RunError, StoreAccessError
from nbtrain.ids import new_run_id
from nbtrain.log_codes import (
    LOG_SERVICE_RUN_LAUNCH_FAILED,
    LOG_SERVICE_RUN_LAUNCHED,
    LOG_WORKER_CONFIG_DURABLE_PATH,
)
from nbtrain.logs import log
from nbtrain.procinfo import own_identity
from nbtrain.store.chunks_write import to_json
from nbtrain.store.migrations import ensure_writable
from nbtrain.store.writer import acquire_writer

if TYPE_CHECKING:
    from nbtrain.config import TrainConfig
    from nbtrain.worker.config_file import WorkerConfig

DEFAULT_DB = "nbtrain.sqlite"


def resolve_db(db: str | os.PathLike[str]) -> Path:
    """The absolute path of ``db``; a folder or a missing parent folder is a StoreError."""
    if not isinstance(db, str | os.PathLike):
        raise TypeError(f"db must be a path, not {type(db).__name__}")
    path = Path(db).expanduser()
    if path.is_dir():
        raise StoreAccessError(f"db={str(db)!r} is a folder; pass the path of a .sqlite file")
    if not path.parent.exists():
        raise StoreAccessError(f"the folder of db={str(db)!r} does not exist; create it first")
    return path.resolve()


def coerce_config(config: TrainConfig | Mapping[str, Any] | str | os.PathLike[str]) -> TrainConfig:
    from nbtrain.config import TrainConfig

    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, Mapping):
        return TrainConfig.model_validate(dict(config))
    if isinstance(config, str | os.PathLike):
        return TrainConfig.load(config)
    raise TypeError(
        f"config must be a TrainConfig, a dict or the path of a config file, "
        f"not {type(config).__name__}"
    )


def agent_pickle(configs: list[WorkerConfig]) -> str | None:
    """The notebook-defined agent's pickle, stored with the run so that a restart in a new
    kernel takes it from the row this kernel wrote, never from the run folder."""
    ref = configs[0].agent
    return ref.payload if ref.kind == "pickle" else None


def start_run(
    cfg: TrainConfig, db: str | os.PathLike[str], backend: str | Backend | None = None
) -> RunSession:
    """Record and start a run of ``cfg`` in ``db`` (see the module docstring for the order);
    returns its session, or raises with nothing left running."""
    db_path = resolve_db(db)
    chosen = resolve_backend(backend)
    ensure_writable(db_path)
    check_runs_root(db_path)
    run_id = new_run_id()
    run_dir = run_dir_for(db_path, run_id)
    worker_configs = cfg.worker_configs(run_id=run_id, run_dir=str(run_dir))
    configs = {wc.worker_id: wc for wc in worker_configs}
    owner_pid, owner_start, owner_host = own_identity()
    now = time.time()
    run_row = (run_id, cfg.name, now, cfg.digest, to_json(cfg.canonical_payload()), "pending",
               owner_pid, owner_start, owner_host, now, agent_pickle(worker_configs))  # fmt: skip

    def record(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO runs (run_id, name, created_at, digest, config, status, owner_pid, "
            "owner_start, owner_host, lease_at, agent_pickle) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            run_row,
        )
        conn.executemany(
            "INSERT INTO workers (run_id, worker_id, status, backend) VALUES (?, ?, 'pending', ?)",
            [(run_id, wid, chosen.name) for wid in configs],
        )

    writer = acquire_writer(db_path)
    try:
        writer.call(record, label=f"create run {run_id}")
        session = RunSession(run_id, db_path, run_dir, configs, chosen)
        try:
            make_run_dir(run_dir)
            for wid, wc in configs.items():
                path = worker_config_path(run_dir, run_id, wid)
                write_worker_config(wc, path)
                log(logging.DEBUG, LOG_WORKER_CONFIG_DURABLE_PATH, "worker config written to %s",
                    path, run_id=run_id, worker_id=wid)  # fmt: skip
            for wid in configs:
                session.start(wid)
        except Exception as exc:
            reason = f"launch failed: {type(exc).__name__}: {exc}"
            log(logging.ERROR, LOG_SERVICE_RUN_LAUNCH_FAILED, "%s", reason, run_id=run_id)
            session.abort_launch(reason)
            raise RunError(f"run {run_id} could not start all its workers ({reason}); "
                           "the workers already started were stopped") from exc  # fmt: skip
    finally:
        writer.release()
    log(logging.INFO, LOG_SERVICE_RUN_LAUNCHED, "run %r launched with %d workers into %s",
        cfg.name, len(configs), db_path, run_id=run_id)  # fmt: skip
    return session


def decode_agent(payload: str | None, ref: object = None) -> Any:
    """The notebook agent of a run, from the ``runs.agent_pickle`` its kernel wrote; ``ref``
    is the run's stored agent reference (``{"kind": "pickle", "name", "source_sha256"}``),
    which then stays the agent's identity in this process."""
    if payload is None:
        return None
    import cloudpickle

    from nbtrain.config.agentref import adopt_stored_agent

    agent = cloudpickle.loads(base64.b64decode(payload))
    if isinstance(ref, dict) and ref.get("kind") == "pickle":
        name, digest = ref.get("name"), ref.get("source_sha256")
        if isinstance(name, str) and isinstance(digest, str):
            adopt_stored_agent(agent, name, digest)
    return agent
