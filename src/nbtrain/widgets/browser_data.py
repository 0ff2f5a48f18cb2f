"""What the run browser shows, read with SQL aggregates and cached so 1,000 runs stay cheap.

Per refresh: one query over ``runs`` (without the config column) and one over ``workers``;
the per-run aggregates (episodes, environment steps, approximate bytes) come from ``GROUP BY``
queries and are cached for runs whose workers have all ended (their rows no longer change);
for runs that go on, counts are read again every ``LIVE_COUNTS_S`` and bytes (which read
all the run's step text) every ``LIVE_AGGREGATE_S``. Only one page of rows
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

from nbtrain.statuses import LIVE_STATUSES, run_status_of
from nbtrain.store import TelemetryStore, schema
from nbtrain.store.compare import compare_band
from nbtrain.store.retention import CHUNK_ROW_BYTES, EPISODE_ROW_BYTES
from nbtrain.widgets._common import finite

SORT_KEYS = ("name", "created", "status", "workers", "episodes", "steps", "size")
LIVE_COUNTS_S = 1.0
LIVE_AGGREGATE_S = 5.0
MAX_IN = 500  # run ids per IN (...) list
MAX_POINTS = 400  # per overlaid curve

Row = dict[str, Any]


@dataclass(frozen=True)
class Aggregate:
    episodes: int
    steps: int
    ep_bytes: int
    chunk_bytes: int
    counted: float  # monotonic time the episode counts were read
    sized: float  # monotonic time the chunk bytes were read
    sig: tuple[str, ...]  # the workers' statuses they were read under
    since: float  # when the statuses became ``sig`` (-inf: already so when first seen)

    @property
    def size(self) -> int:
        return self.ep_bytes + self.chunk_bytes


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
    def _stale(self, run_id: str, sig: tuple[str, ...], now: float) -> tuple[bool, bool]:
        """Whether the run's (episode counts, chunk bytes) must be read again."""
        entry = self._agg.get(run_id)
        if entry is None or entry.sig != sig:
            return True, True
        if not (set(sig) & LIVE_STATUSES) and now - entry.since > LIVE_AGGREGATE_S:
            return False, False  # ended a while ago: its rows no longer change
        return now - entry.counted > LIVE_COUNTS_S, now - entry.sized > LIVE_AGGREGATE_S

    def _aggregates(self, sigs: dict[str, tuple[str, ...]]) -> None:
        """Refresh the cached aggregates of runs that are new, changed status, or go on
        (and of runs that ended less than ``LIVE_AGGREGATE_S`` ago: their last rows land).
        Episode counts of a live run are cheap (its episode rows) and read every second;
        its chunk bytes (all its step text) at most every ``LIVE_AGGREGATE_S``."""
        now = time.monotonic()
        stale = {r: self._stale(r, sig, now) for r, sig in sigs.items()}
        counts = [r for r, (c, _) in stale.items() if c]
        sizes = [r for r, (_, b) in stale.items() if b]
        if not counts and not sizes:
            return
        found_counts: dict[str, tuple[int, int, int]] = dict.fromkeys(counts, (0, 0, 0))
        found_sizes: dict[str, int] = dict.fromkeys(sizes, 0)
        for part in _chunks(counts):
            self.aggregate_queries += 1
            for run_id, n, steps, size in self._read(
                f"SELECT run_id, COUNT(*), COALESCE(SUM(length), 0), SUM(length(episode_id) + "
                f"COALESCE(length(extras), 0) + {EPISODE_ROW_BYTES}) FROM episodes "
                f"WHERE run_id IN ({', '.join('?' * len(part))}) GROUP BY run_id",
                part,
            ):
                found_counts[run_id] = (int(n), int(steps), int(size or 0))
        for part in _chunks(sizes):
            self.aggregate_queries += 1
            for run_id, size in self._read(
                f"SELECT run_id, SUM(length(rows) + {CHUNK_ROW_BYTES}) FROM step_chunks "
                f"WHERE run_id IN ({', '.join('?' * len(part))}) GROUP BY run_id",
                part,
            ):
                found_sizes[run_id] = int(size or 0)
        for run_id in set(counts) | set(sizes):
            old = self._agg.get(run_id)
            sig = sigs[run_id]
            if old is None and not (set(sig) & LIVE_STATUSES):
                since = -math.inf  # already ended when first seen
            else:
                since = old.since if old is not None and old.sig == sig else now
            n, steps, ep_bytes = found_counts.get(
                run_id, (old.episodes, old.steps, old.ep_bytes) if old else (0, 0, 0)
            )
            chunk_bytes = found_sizes.get(run_id, old.chunk_bytes if old else 0)
            self._agg[run_id] = Aggregate(
                episodes=n,
                steps=steps,
                ep_bytes=ep_bytes,
                chunk_bytes=chunk_bytes,
                counted=now if run_id in found_counts else (old.counted if old else now),
                sized=now if run_id in found_sizes else (old.sized if old else now),
                sig=sig,
                since=since,
            )

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
                    "status": run_status_of([s for _, s in ws]) if ws else (status or ""),
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
    return [finite(round(float(v), 6)) for v in values]


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


__all__ = ["MAX_POINTS", "SORT_KEYS", "RunIndex", "overlay"]
