"""Reading the store back as DataFrames, through read-only ``sqlite3`` connections.

Steps are read from ``step_chunks`` directly, never through the ``steps`` view: chunks are
decoded by :mod:`nbtrain.store.chunks_read`, several times faster than ``pd.read_sql_query`` of
a row-per-step table (and ~10x faster than the view).

A :class:`Reader` opens a connection per query (so it never holds a read transaction open
between calls); a reader bound to one connection inside ``BEGIN ... COMMIT`` is a snapshot:
all its frames come from the same committed state. SQLite errors become
:class:`~nbtrain.errors.StoreError` subclasses naming the file.
"""

from __future__ import annotations

import contextlib
import difflib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nbtrain.errors import UnknownRunError, UnknownWorkerError
from nbtrain.ids import normalize_worker_id
from nbtrain.store import files, schema
from nbtrain.store.chunks_read import ChunkColumns, episode_chunks
from nbtrain.store.frames import Values, constant, convert, frame, parse_json

RUN_KINDS = {
    "run_id": "str",
    "name": "str",
    "created_at": "time",
    "digest": "str",
    "config": "json",
    "status": "str",
}
# Readable columns of runs(), derived from the stored config.
RUN_DERIVED = ("env_id", "agent", "mode", "n_workers")
# What TelemetryStore.run() adds: the owner's lease, as stored (lease_at in Unix seconds).
RUN_OWNER = ("owner_pid", "owner_start", "owner_host", "lease_at")
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
    "pid_start": "str",
    "resumed_from": "str",
    "backend": "str",
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
    if isinstance(columns, str):
        wanted = [columns]
    elif isinstance(columns, Iterable) and not isinstance(columns, bytes):
        wanted = list(columns)
    else:
        raise TypeError(
            f"columns must be a column name or a list of them, not {type(columns).__name__}"
        )
    if not wanted:
        raise ValueError(f"columns is empty; valid {what} columns: {', '.join(kinds)}")
    bad = [c for c in wanted if c not in kinds]
    if bad:
        raise ValueError(f"unknown {what} column(s) {bad!r}; valid columns: {', '.join(kinds)}")
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
    items: list[object] = [ep_index]  # a str is one (bad) value, not a list of characters
    if isinstance(ep_index, Iterable) and not isinstance(ep_index, str | bytes):
        items = list(ep_index)
    out = []
    for item in items:
        if isinstance(item, bool) or not hasattr(item, "__index__") or not 0 <= int(item) < 2**63:
            raise ValueError(f"episode index {item!r} must be an integer from 0 to 2**63 - 1")
        out.append(int(item))
    return out


def check_run_id_type(run_id: object) -> None:
    """A run id that is not a str is the caller's mistake, not a broken file (SQLite would
    fail to bind it and the error would name the database)."""
    if not isinstance(run_id, str):
        raise TypeError(f"run_id must be a str, not {type(run_id).__name__}")


class Reader:
    """Read-only access to one store file (``conn``: a snapshot's open read transaction)."""

    def __init__(self, path: Path, conn: sqlite3.Connection | None = None) -> None:
        self.path = path
        self._conn = conn
        self._plain = False  # a plain read-only connection worked (so skip the probe)

    def connect(self) -> sqlite3.Connection:
        """A new read-only connection; ``immutable`` while the file's folder or mount is
        read-only and no ``-shm`` exists (probed again each time, in case a writer starts)."""
        if self._plain:
            try:
                return schema.connect(self.path, readonly=True)
            except sqlite3.Error as exc:
                raise files.store_error(exc, self.path, writing=False) from exc
        conn, immutable = files.connect_reader(self.path)
        self._plain = not immutable
        return conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        if self._conn is not None:
            yield self._conn
            return
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Reader]:
        """A reader whose queries all see one committed state (one read transaction)."""
        conn = self.connect()
        try:
            try:
                conn.execute("BEGIN")
                conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # starts it
            except sqlite3.Error as exc:
                raise files.store_error(exc, self.path, writing=False) from exc
            yield Reader(self.path, conn)
        finally:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("COMMIT")
            conn.close()

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        bound = params if isinstance(params, dict) else tuple(params)
        try:
            with self.connection() as conn:
                return conn.execute(sql, bound).fetchall()
        except sqlite3.Error as exc:
            raise files.store_error(exc, self.path, writing=False) from exc

    def columns(self, sql: str, params: Sequence[Any], names: list[str]) -> dict[str, Values]:
        rows = self.rows(sql, params)
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        return dict(zip(names, cols, strict=True))

    # -- existence checks -------------------------------------------------------------------
    def check_run(self, run_id: str) -> None:
        check_run_id_type(run_id)
        if not self.rows("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)):
            self.unknown_run(run_id)

    def unknown_run(self, run_id: str) -> None:
        """Raise :class:`UnknownRunError` naming the closest run ids in the file."""
        ids = [str(row[0]) for row in self.rows("SELECT run_id FROM runs")]
        if not ids:
            hint = "it has no runs"
        else:
            near = difflib.get_close_matches(str(run_id), ids, n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(near)}?" if near else f"it has {len(ids)} run(s)"
        raise UnknownRunError(
            f"no run {run_id!r} in {self.path}; {hint} (nbtrain runs lists them)",
            run_id=run_id,
            path=self.path,
        )

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
            raise UnknownWorkerError(run_id, missing[0], known)

    # -- frames -----------------------------------------------------------------------------
    def runs(self) -> pd.DataFrame:
        """One row per run, oldest first: the stored columns, then ``env_id, agent, mode,
        n_workers`` read from each run's config."""
        names = list(RUN_KINDS)
        sql = (
            f"SELECT {', '.join(names)}, {_WORKER_COUNT} FROM runs AS r ORDER BY created_at, run_id"
        )
        rows = self.rows(sql)
        cols: list[Values] = (
            list(zip(*rows, strict=True)) if rows else [() for _ in range(len(names) + 1)]
        )
        df = frame(RUN_KINDS, dict(zip(names, cols[:-1], strict=True)))
        derived = [describe_config(c, n) for c, n in zip(df["config"], cols[-1], strict=True)]
        derived_cols = list(zip(*derived, strict=True)) if derived else [() for _ in RUN_DERIVED]
        for name, values, kind in zip(RUN_DERIVED, derived_cols, ("str", "str", "str", "int"),
                                      strict=True):  # fmt: skip
            df[name] = convert(kind, values)
        return df

    def run(self, run_id: str) -> dict[str, Any]:
        """The run's record: the ``runs()`` columns and the owner's lease, as a dict."""
        check_run_id_type(run_id)
        names = [*RUN_KINDS, *RUN_OWNER]
        sql = f"SELECT {', '.join(names)}, {_WORKER_COUNT} FROM runs AS r WHERE run_id = ?"
        rows = self.rows(sql, (run_id,))
        if not rows:
            self.unknown_run(run_id)
        record = dict(zip(names, rows[0][:-1], strict=True))
        record["created_at"] = convert("time", [record["created_at"]])[0]
        record["config"] = parse_json([record["config"]])[0]
        derived = describe_config(record["config"], rows[0][-1])
        record.update(zip(RUN_DERIVED, derived, strict=True))
        return {name: record[name] for name in [*RUN_KINDS, *RUN_DERIVED, *RUN_OWNER]}

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
        chunks = ChunkColumns()
        try:
            if indexes is None:
                with self.connection() as conn:
                    # One statement: a consistent snapshot even while a writer commits (WAL).
                    where, params = _where(run_id, workers, None)
                    chunks.add(
                        conn.execute(
                            f"SELECT worker_id, ep_index, last_ep, rows FROM step_chunks "
                            f"{where} ORDER BY worker_id, ep_index, first_step",
                            tuple(params),
                        )
                    )
            else:
                # Several statements: one read transaction keeps them on one snapshot.
                snapshot = self.snapshot() if self._conn is None else contextlib.nullcontext(self)
                with snapshot as reader, reader.connection() as conn:
                    chunks.add(episode_chunks(conn, run_id, workers, indexes), set(indexes))
        except sqlite3.Error as exc:
            raise files.store_error(exc, self.path, writing=False) from exc
        chunks.log_failures(run_id)
        n = len(chunks)
        data: dict[str, Any] = {}
        for name in names:
            if name == "run_id":
                data[name] = constant("str", run_id, n)
            elif name == "worker_id" and workers is not None and len(workers) == 1 and n:
                data[name] = constant("cat", workers[0], n)
            else:
                data[name] = chunks.column(name)
        return pd.DataFrame(data, columns=names, index=pd.RangeIndex(n))


_WORKER_COUNT = "(SELECT COUNT(*) FROM workers AS w WHERE w.run_id = r.run_id)"


def describe_config(config: Any, worker_rows: int) -> tuple[Any, Any, Any, int]:
    """``(env_id, agent, mode, n_workers)`` from a stored config (None where it does not
    say; the number of worker rows when it does not list its workers)."""
    if not isinstance(config, dict):
        return None, None, None, int(worker_rows)
    agent = config.get("agent")
    if isinstance(agent, dict):
        agent = agent.get("name") or agent.get("kind")
    workers = config.get("workers")
    if isinstance(workers, list):
        n = len(workers)
    elif isinstance(workers, int) and not isinstance(workers, bool):
        n = workers
    else:
        n = int(worker_rows)
    return (
        _text(config.get("env_id")),
        _text(agent),
        _text(config.get("mode")),
        n,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


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
