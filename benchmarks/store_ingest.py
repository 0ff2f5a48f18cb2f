"""Ingest throughput: the store writer vs a bare ``executemany`` into the same schema.

Both get the same ``Steps`` events (1000 steps each, discrete obs/action, a two-key extras
dict) and end with everything committed. The baseline does what straightforward code would:
zip the columns into row tuples, JSON-encode extras, ``executemany`` in one transaction.

    python benchmarks/store_ingest.py [--rows 1000000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import msgspec

from nbtrain.ids import new_run_id
from nbtrain.store import acquire_writer, migrate
from nbtrain.store.encode import INSERT_STEP
from nbtrain.wire.events import Steps


def make_events(run_id: str, rows: int, batch: int) -> list[Steps]:
    events = []
    for b in range(rows // batch):
        idx = list(range(batch))
        events.append(
            Steps(
                run_id=run_id,
                worker_id="000001",
                ep_index=[b] * batch,
                step_index=idx,
                action=[i % 4 for i in idx],
                reward=[float(i % 2) for i in idx],
                terminated=[i == batch - 1 for i in idx],
                truncated=[False] * batch,
                obs=[i % 16 for i in idx],
                extras=[{"epsilon": 0.5, "td_error": i * 0.01} for i in idx],
                ts=[1.7e9 + i * 1e-3 for i in idx],
            )
        )
    return events


def bare(path: Path, events: list[Steps]) -> float:
    migrate(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    encode = msgspec.json.encode
    start = time.perf_counter()
    conn.execute("BEGIN")
    for e in events:
        n = len(e)
        conn.executemany(
            INSERT_STEP,
            zip(
                [e.run_id] * n,
                [e.worker_id] * n,
                e.ep_index,
                e.step_index,
                e.action,
                e.reward,
                e.terminated,
                e.truncated,
                e.obs,
                [encode(x).decode() for x in e.extras],
                e.ts,
                strict=True,
            ),
        )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def writer(path: Path, events: list[Steps]) -> float:
    w = acquire_writer(path)
    try:
        start = time.perf_counter()
        for e in events:
            w.add_events([e])
        w.flush()
        elapsed = time.perf_counter() - start
        assert w.failed_writes == 0
    finally:
        w.release()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    events = make_events(new_run_id(), args.rows, args.batch)
    rows = len(events) * args.batch
    with tempfile.TemporaryDirectory() as tmp:
        t_bare = bare(Path(tmp, "bare.sqlite"), events)
        t_writer = writer(Path(tmp, "writer.sqlite"), events)
        for name in ("bare.sqlite", "writer.sqlite"):
            count = sqlite3.connect(Path(tmp, name)).execute("SELECT COUNT(*) FROM steps")
            assert count.fetchone()[0] == rows, name
    print(f"rows: {rows:,}")
    print(f"bare executemany: {rows / t_bare:>12,.0f} rows/s ({t_bare:.2f} s)")
    print(f"store writer:     {rows / t_writer:>12,.0f} rows/s ({t_writer:.2f} s)")
    print(f"ratio writer/bare: {t_bare / t_writer:.2f}x")


if __name__ == "__main__":
    main()
