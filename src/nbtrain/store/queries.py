"""Reading the store back as DataFrames, through read-only ``sqlite3`` connections.

Steps are read from ``step_chunks`` directly, never through the ``steps`` view: chunks are
decoded by :mod:`nbtrain.store.chunks`, several times faster than ``pd.read_sql_query`` of
a row-per-step table (and ~10x faster than the view).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nbtrain.errors import UnknownRunError, UnknownWorkerError
from nbtrain.ids import normalize_worker_id
from nbtrain.store import schema
from nbtrain.store.chunks import ChunkColumns
from nbtrain.store.frames import Values, constant, frame

RUN_KINDS = {
    "run_id": "str",
    "name": "str",
    "created_at": "time",
    "digest": "str",
    "config": "json",
    "status": "str",
}
WORKER_KINDS = {
    "run_id": "str",
    "worker_id": "cat",
    "status": "str",
    "pid": "nint",
    "exit_code": "nint",
    "error": "str",
    "started_at": "time",
    "ended_at": "time",
    "traceback": "str",
    "output": "str",
}
EPISODE_KINDS = {
    "run_id": "str",
    "worker_id": "cat",
    "ep_index": "int",
    "episode_id": "str",
    "total_reward": "float",
    "length": "int",
    "terminated": "bool",
    "truncated": "bool",
    "seed": "int",
    "started_at": "time",
    "ended_at": "time",
    "extras": "str",
}
STEP_KINDS = {
    "run_id": "str",
    "worker_id": "cat",
    "ep_index": "int",
    "step_index": "int",
    "action": "value",
    "reward": "float",
    "terminated": "bool",
    "truncated": "bool",
    "obs": "value",
    "extras": "str",
    "ts": "time",
}


def pick_columns(
    columns: str | Sequence[str] | None, kinds: dict[str, str], what: str
) -> list[str]:
    if columns is None:
        return list(kinds)
    wanted = [columns] if isinstance(columns, str) else list(columns)
    bad = [c for c in wanted if c not in kinds]
    if bad or not wanted:
        raise ValueError(
            f"unknown {what} column(s) {bad or wanted!r}; valid columns: {', '.join(kinds)}"
        )
    return wanted


def worker_list(worker_id: object) -> list[str] | None:
    if worker_id is None:
        return None
    items = (
        list(worker_id)
        if isinstance(worker_id, Iterable) and not isinstance(worker_id, str | bytes)
        else [worker_id]
    )
    return [normalize_worker_id(w) for w in items]


def index_list(ep_index: object) -> list[int] | None:
    if ep_index is None:
        return None
    items = list(ep_index) if isinstance(ep_index, Iterable) else [ep_index]
    out = []
    for item in items:
        if isinstance(item, bool) or not hasattr(item, "__index__") or int(item) < 0:
            raise ValueError(f"episode index {item!r} must be an integer >= 0")
        out.append(int(item))
    return out


class Reader:
    """Read-only access to one store file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def connect(self) -> sqlite3.Connection:
        return schema.connect(self.path, readonly=True)

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            bound = params if isinstance(params, dict) else tuple(params)
            return conn.execute(sql, bound).fetchall()
        finally:
            conn.close()

    def columns(self, sql: str, params: Sequence[Any], names: list[str]) -> dict[str, Values]:
        rows = self.rows(sql, params)
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        return dict(zip(names, cols, strict=True))

    # -- existence checks -------------------------------------------------------------------
    def check_run(self, run_id: str) -> None:
        if not self.rows("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)):
            raise UnknownRunError(f"no run {run_id!r} in {self.path}")

    def known_workers(self, run_id: str | None) -> set[str]:
        where, params = ("WHERE run_id = ?", (run_id,)) if run_id else ("", ())
        sql = (
            f"SELECT worker_id FROM workers {where} "
            f"UNION SELECT DISTINCT worker_id FROM episodes {where}"
        )
        return {row[0] for row in self.rows(sql, params * 2)}

    def check_workers(self, run_id: str | None, workers: list[str] | None) -> None:
        if not workers:
            return
        known = self.known_workers(run_id)
        missing = [w for w in workers if w not in known]
        if missing:
            where = f"run {run_id!r}" if run_id else str(self.path)
            raise UnknownWorkerError(
                f"no worker {', '.join(map(repr, missing))} in {where}; "
                f"workers: {', '.join(sorted(known)) or 'none'}"
            )

    # -- frames -----------------------------------------------------------------------------
    def runs(self) -> pd.DataFrame:
        names = list(RUN_KINDS)
        sql = f"SELECT {', '.join(names)} FROM runs ORDER BY created_at, run_id"
        return frame(RUN_KINDS, self.columns(sql, (), names))

    def workers(self, run_id: str) -> pd.DataFrame:
        self.check_run(run_id)
        names = list(WORKER_KINDS)
        sql = f"SELECT {', '.join(names)} FROM workers WHERE run_id = ? ORDER BY worker_id"
        return frame(WORKER_KINDS, self.columns(sql, (run_id,), names))

    def episodes(
        self,
        run_id: str | None = None,
        worker_id: object = None,
        columns: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        names = pick_columns(columns, EPISODE_KINDS, "episode")
        workers = worker_list(worker_id)
        if run_id is not None:
            self.check_run(run_id)
        self.check_workers(run_id, workers)
        where, params = _where(run_id, workers, None)
        sql = (
            f"SELECT {', '.join(names)} FROM episodes {where} ORDER BY run_id, worker_id, ep_index"
        )
        return frame(EPISODE_KINDS, self.columns(sql, params, names))

    def steps(
        self,
        run_id: str,
        worker_id: object = None,
        ep_index: object = None,
        columns: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        names = pick_columns(columns, STEP_KINDS, "step")
        workers = worker_list(worker_id)
        indexes = index_list(ep_index)
        self.check_run(run_id)
        self.check_workers(run_id, workers)
        where, params = _where(run_id, workers, indexes)
        chunks = ChunkColumns()
        conn = self.connect()
        try:
            # One statement: a consistent snapshot even while a writer commits (WAL).
            chunks.add(
                conn.execute(
                    f"SELECT worker_id, ep_index, rows FROM step_chunks {where} "
                    "ORDER BY worker_id, ep_index, first_step",
                    tuple(params),
                )
            )
        finally:
            conn.close()
        chunks.log_failures(run_id)
        n = len(chunks)
        data: dict[str, Any] = {}
        for name in names:
            if name == "run_id":
                data[name] = constant("str", run_id, n)
            elif name == "worker_id" and workers is not None and len(workers) == 1:
                data[name] = constant("cat", workers[0], n)
            else:
                data[name] = chunks.column(name)
        return pd.DataFrame(data, columns=names, index=pd.RangeIndex(n))


def _where(
    run_id: str | None, workers: list[str] | None, indexes: list[int] | None
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if run_id is not None:
        clauses.append("run_id = ?")
        params.append(run_id)
    if workers is not None:
        clauses.append(f"worker_id IN ({', '.join('?' * len(workers))})")
        params.extend(workers)
    if indexes is not None:
        clauses.append(f"ep_index IN ({', '.join('?' * len(indexes))})")
        params.extend(indexes)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params
