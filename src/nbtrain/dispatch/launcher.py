"""``nbtrain.launch``: validate, record the run, write the worker files, start the workers.

Everything that can fail on bad input (validation, paths) happens before the first row is
written or the first process starts, so a bad config launches nothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrain.dispatch.session import RunSession, worker_config_path
from nbtrain.ids import new_run_id
from nbtrain.log_codes import LOG_SERVICE_RUN_LAUNCHED, LOG_WORKER_CONFIG_DURABLE_PATH
from nbtrain.logs import log
from nbtrain.store.writer import acquire_writer
from nbtrain.worker.spec import dump_worker_config

if TYPE_CHECKING:
    from nbtrain.config import TrainConfig
    from nbtrain.run import Run

DEFAULT_DB = "nbtrain.sqlite"
RUNS_FOLDER = "nbtrain-runs"


def resolve_db(db: str | os.PathLike[str]) -> Path:
    path = Path(db).expanduser()
    if path.exists() and path.is_dir():
        raise IsADirectoryError(f"db={str(db)!r} is a folder; pass the path of a .sqlite file")
    if not path.parent.exists():
        raise FileNotFoundError(f"the folder of db={str(db)!r} does not exist")
    return path.resolve()


def run_dir_for(db_path: Path, run_id: str) -> Path:
    return db_path.parent / RUNS_FOLDER / run_id


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


def launch(
    config: TrainConfig | Mapping[str, Any] | str | os.PathLike[str],
    db: str | os.PathLike[str] = DEFAULT_DB,
) -> Run:
    """Start a run in the background and return its :class:`~nbtrain.Run` at once."""
    from nbtrain.run import Run

    cfg = coerce_config(config)
    db_path = resolve_db(db)
    run_id = new_run_id()
    run_dir = run_dir_for(db_path, run_id)
    worker_configs = cfg.worker_configs(run_id=run_id, run_dir=str(run_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    configs = {wc.worker_id: wc for wc in worker_configs}
    for wid, wc in configs.items():
        path = worker_config_path(run_dir, run_id, wid)
        dump_worker_config(wc, path)
        log(
            logging.DEBUG,
            LOG_WORKER_CONFIG_DURABLE_PATH,
            "worker config written to %s",
            path,
            run_id=run_id,
            worker_id=wid,
        )

    writer = acquire_writer(db_path)
    try:
        writer.create_run(
            run_id=run_id,
            name=cfg.name,
            created_at=time.time(),
            digest=cfg.digest,
            config=cfg.canonical_payload(),
            status="running",
        )
        for wid in configs:
            writer.upsert_worker(run_id, wid, status="pending")
        session = RunSession(run_id, db_path, run_dir, configs)
        for wid in configs:
            session.start(wid)
    finally:
        writer.release()
    log(
        logging.INFO,
        LOG_SERVICE_RUN_LAUNCHED,
        "run %r launched with %d workers into %s",
        cfg.name,
        len(configs),
        db_path,
        run_id=run_id,
    )
    return Run._from_session(session)
