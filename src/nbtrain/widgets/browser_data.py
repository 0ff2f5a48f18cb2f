"""What the run browser shows, read with SQL aggregates and cached so 1,000 runs stay cheap.

Per refresh: one query over ``runs`` (without the config column) and one over ``workers``;
the per-run aggregates (episodes, environment steps, approximate bytes) come from ``GROUP BY``
queries and are cached for runs whose workers have all ended (their rows no longer change),
recomputed at most every ``LIVE_AGGREGATE_S`` for runs that go on. Only one page of rows
leaves the kernel. Whether anything changed is ``PRAGMA data_version`` on a kept read-only
connection: it moves when any other connection commits, and costs no I/O.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from nbtrain.dispatch.session import FINAL_STATUSES, run_status_of
from nbtrain.store import TelemetryStore, schema
from nbtrain.store.compare import compare_band
from nbtrain.store.retention import CHUNK_ROW_BYTES, EPISODE_ROW_BYTES, LIVE_STATUSES

SORT_KEYS = ("name", "created", "status", "workers", "episodes", "steps", "size")
LIVE_AGGREGATE_S = 5.0
MAX_IN = 500  # run ids per IN (...) list
MAX_POINTS = 400  # per overlaid curve

Row = dict[str, Any]


@dataclass(frozen=True)
class Aggregate:
    episodes: int
    steps: int
    size: int
    computed: float  # monotonic time of the query
    sig: tuple[str, ...]  # the workers' statuses it was computed under
    since: float  # when the statuses became ``sig`` (-inf: already so when first seen)


def _chunks(items: list[str], size: int = MAX_IN) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class RunIndex:
    """The runs of one database as table rows; thread-safe (the poll thread and the kernel)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.store = TelemetryStore(db)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._agg: dict[str, Aggregate] = {}
        self._live: set[str] = set()
        self.run_ids: set[str] = set()  # every run at the last refresh
        self.aggregate_queries = 0  # counted so tests can see the cache work

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        if self._conn is None:
            self._conn = schema.connect(self.db, readonly=True)
        return self._conn.execute(sql, tuple(params)).fetchall()

    def data_version(self) -> int:
        with self._lock:
            return int(self._read("PRAGMA data_version")[0][0])

    # -- rows ------------------------------------------------------------------------------
    def _stale(self, run_id: str, sig: tuple[str, ...], now: float) -> bool:
        entry = self._agg.get(run_id)
        if entry is None or entry.sig != sig:
            return True
        settled = not (set(sig) & LIVE_STATUSES) and now - entry.since > LIVE_AGGREGATE_S
        return not settled and now - entry.computed > LIVE_AGGREGATE_S

    def _aggregates(self, sigs: dict[str, tuple[str, ...]]) -> None:
        """Refresh the cached aggregates of runs that are new, changed status, or go on
        (and of runs that ended less than ``LIVE_AGGREGATE_S`` ago: their last rows land)."""
        now = time.monotonic()
        stale = [r for r, sig in sigs.items() if self._stale(r, sig, now)]
        if not stale:
            return
        found: dict[str, list[int]] = {r: [0, 0, 0] for r in stale}
        for part in _chunks(stale):
            marks = ", ".join("?" * len(part))
            self.aggregate_queries += 2
            for run_id, n, steps, size in self._read(
                f"SELECT run_id, COUNT(*), COALESCE(SUM(length), 0), SUM(length(episode_id) + "
                f"COALESCE(length(extras), 0) + {EPISODE_ROW_BYTES}) FROM episodes "
                f"WHERE run_id IN ({marks}) GROUP BY run_id",
                part,
            ):
                found[run_id][0:3] = [int(n), int(steps), int(size or 0)]
            for run_id, size in self._read(
                f"SELECT run_id, SUM(length(rows) + {CHUNK_ROW_BYTES}) FROM step_chunks "
                f"WHERE run_id IN ({marks}) GROUP BY run_id",
                part,
            ):
                found[run_id][2] += int(size or 0)
        for run_id, (n, steps, size) in found.items():
            old = self._agg.get(run_id)
            first = old is None and not (set(sigs[run_id]) & LIVE_STATUSES)
            since = -math.inf if first else (old.since if old and old.sig == sigs[run_id] else now)
            self._agg[run_id] = Aggregate(n, steps, size, now, sigs[run_id], since)

    def all_rows(self) -> list[Row]:
        """Every run as a table row (statuses as the store reports them for live runs)."""
        with self._lock:
            runs = self._read("SELECT run_id, name, created_at, status FROM runs")
            workers: dict[str, list[list[str]]] = {}
            for run_id, wid, status in self._read(
                "SELECT run_id, worker_id, status FROM workers ORDER BY run_id, worker_id"
            ):
                workers.setdefault(run_id, []).append([wid, status or "pending"])
            live = {r for r, ws in workers.items() if any(s in LIVE_STATUSES for _, s in ws)}
            for run_id in sorted(live):
                # The store's own view: workers of a kernel that died are reported failed.
                try:
                    frame = self.store.workers(run_id)
                except LookupError:
                    continue
                workers[run_id] = [
                    [str(w), str(s)]
                    for w, s in zip(frame["worker_id"], frame["status"], strict=True)
                ]
                if not any(s in LIVE_STATUSES for _, s in workers[run_id]):
                    live.discard(run_id)
            sigs = {str(r[0]): tuple(s for _, s in workers.get(r[0], [])) for r in runs}
            self.run_ids = set(sigs)
            self._agg = {r: v for r, v in self._agg.items() if r in sigs}
            self._aggregates(sigs)
            self._live = live
        rows = []
        for run_id, name, created, status in runs:
            ws = workers.get(run_id, [])
            agg = self._agg[run_id]
            n, steps, size = agg.episodes, agg.steps, agg.size
            rows.append(
                {
                    "run_id": run_id,
                    "name": name or "",
                    "created": _iso(created),
                    "created_at": float(created or 0.0),
                    "status": run_status_of(dict(ws)) if ws else (status or ""),
                    "live": run_id in live,
                    "workers": ws,
                    "episodes": n,
                    "steps": steps,
                    "size": size,
                }
            )
        return rows

    def page(self, sort: str, descending: bool, page: int, page_size: int) -> tuple[int, list[Row]]:
        """``(total, rows of the page)``; ties are broken by run id (ULIDs: creation order)."""
        if sort not in SORT_KEYS:
            raise ValueError(f"cannot sort by {sort!r}; columns: {', '.join(SORT_KEYS)}")
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, not {page_size}")
        rows = self.all_rows()

        def key(row: Row) -> Any:
            if sort == "created":
                return row["created_at"]
            if sort == "workers":
                return len(row["workers"])
            if sort == "name":
                return row["name"].lower()
            return row[sort]

        rows.sort(key=lambda r: r["run_id"], reverse=descending)
        rows.sort(key=key, reverse=descending)
        start = max(0, page) * page_size
        return len(rows), rows[start : start + page_size]

    def any_live(self, run_ids: Iterable[str]) -> bool:
        """Whether any of these runs had a live worker at the last refresh."""
        with self._lock:
            return bool(self._live & set(run_ids))


def _iso(created: Any) -> str:
    if created is None:
        return ""
    return datetime.fromtimestamp(float(created), UTC).strftime("%Y-%m-%d %H:%M:%S")


def _clean(values: np.ndarray[Any, Any]) -> list[float | None]:
    return [None if not math.isfinite(v) else round(float(v), 6) for v in values]


def overlay(store: TelemetryStore, names: dict[str, str], run_ids: list[str]) -> dict[str, Any]:
    """Learning curves of several runs: per run, mean and mean ± sd across its workers by
    episode index, averaged into at most ``MAX_POINTS`` bins (JSON-ready)."""
    band = compare_band(store._reader, run_ids)
    out = []
    for run_id in run_ids:
        part = band[band["run_id"] == run_id]
        ep = part["ep_index"].to_numpy()
        mean = part["mean"].to_numpy()
        sd = np.nan_to_num(part["sd"].to_numpy(), nan=0.0)
        if len(ep) > MAX_POINTS:
            width = math.ceil((int(ep[-1]) + 1) / MAX_POINTS)
            bins = ep // width
            edges = np.flatnonzero(np.diff(bins)) + 1
            starts = np.concatenate(([0], edges))
            counts = np.diff(np.concatenate((starts, [len(ep)])))
            ep = bins[starts] * width + width - 1
            mean = np.add.reduceat(mean, starts) / counts
            sd = np.add.reduceat(sd, starts) / counts
        out.append(
            {
                "run_id": run_id,
                "name": names.get(run_id, ""),
                "ep": [int(e) for e in ep],
                "mean": _clean(mean),
                "lo": _clean(mean - sd),
                "hi": _clean(mean + sd),
                "workers": int(part["n_workers"].max()) if len(part) else 0,
            }
        )
    return {"metric": "total_reward", "runs": out}


__all__ = ["FINAL_STATUSES", "MAX_POINTS", "SORT_KEYS", "RunIndex", "overlay"]
