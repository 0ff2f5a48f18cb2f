"""The unit of work queued to the writer thread, the checks made before queueing, and the
writer's failure listeners."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nbtrain.errors import StoreWriteError
from nbtrain.log_codes import LOG_SERVICE_SQLITE_WRITE_FAILED
from nbtrain.logs import log
from nbtrain.statuses import WORKER_STATUSES

WORKER_FIELDS = frozenset(
    {
        "status",
        "pid",
        "exit_code",
        "error",
        "started_at",
        "ended_at",
        "traceback",
        "output",
        "pid_start",
        "resumed_from",
        "backend",
        "stop_requested",
    }
)
FailureListener = Callable[[StoreWriteError], object]


@dataclass
class Op:
    """One queued unit of work. ``call`` runs in the write transaction (or outside it when
    ``outside_txn``); ``chunks`` / ``episodes`` hold telemetry rows; a bare ``done`` marks a
    flush."""

    rows: int = 0
    chunks: list[tuple[Any, ...]] | None = None
    episodes: list[tuple[Any, ...]] | None = None
    call: Callable[[Any], Any] | None = None
    label: str = ""
    future: Future[Any] | None = None
    barrier: bool = False
    outside_txn: bool = False
    done: threading.Event | None = None
    urgent: bool = False
    stop: bool = False
    enqueued: float = field(default_factory=time.monotonic)
    # ``(tell, n)``: once the op's rows are committed the writer thread calls ``tell(n)``
    # (the largest ``n`` of a batch, once per ``tell``); it must be quick and must not
    # raise. The ingest tells a worker which of its episodes are stored.
    acknowledge: tuple[Callable[[int], None], int] | None = None


def seconds(value: float | datetime | None) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    return None if value is None else float(value)


def check_status(status: object, allowed: frozenset[str], what: str) -> None:
    if status not in allowed:
        raise ValueError(f"invalid {what} status {status!r}; allowed: {sorted(allowed)}")


def worker_upsert(fields: dict[str, Any]) -> str:
    """The ``INSERT ... ON CONFLICT DO UPDATE`` for a worker row with ``fields`` (checked)."""
    unknown = set(fields) - WORKER_FIELDS
    if unknown:
        raise ValueError(
            f"unknown worker field(s) {sorted(unknown)}; allowed: {sorted(WORKER_FIELDS)}"
        )
    if "status" in fields:
        check_status(fields["status"], WORKER_STATUSES, "worker")
    for key in ("started_at", "ended_at"):
        if key in fields:
            fields[key] = seconds(fields[key])
    names = list(fields)
    cols = ", ".join(["run_id", "worker_id", *names])
    marks = ", ".join("?" * (len(names) + 2))
    update = ", ".join(f"{n} = excluded.{n}" for n in names) or "worker_id = worker_id"
    return (
        f"INSERT INTO workers({cols}) VALUES ({marks}) "
        f"ON CONFLICT(run_id, worker_id) DO UPDATE SET {update}"
    )


def notify(listener: FailureListener, failure: StoreWriteError) -> None:
    try:
        listener(failure)
    except Exception:
        log(logging.ERROR, LOG_SERVICE_SQLITE_WRITE_FAILED, "a store failure listener raised",
            exc_info=True)  # fmt: skip
