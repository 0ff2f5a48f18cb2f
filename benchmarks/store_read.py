"""Read throughput: ``TelemetryStore.steps(run_id, worker_id)`` vs ``pd.read_sql_query``.

One run, two workers; worker 000001 has ``--rows`` steps (discrete obs/action, extras) in
``--episode``-step episodes. Three reads of worker 000001's steps:

- ``TelemetryStore.steps``: decodes the chunks directly; finished dtypes (categorical worker
  id, UTC timestamps, bools, int obs/action, extras text);
- ``pd.read_sql_query`` through the ``steps`` view (what ad-hoc SQL on the file costs);
- ``pd.read_sql_query`` of a plain row-per-step table holding the same rows (what a
  straightforward row-per-step store would give). ``read_sql_query`` returns raw values, so
  both baselines are favoured.

    python benchmarks/store_read.py [--rows 1000000] [--repeat 3] [--episode 100]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pandas as pd

from nbtrain.ids import new_run_id
from nbtrain.store import TelemetryStore
from nbtrain.store.writer import acquire_writer

sys.path.insert(0, str(Path(__file__).parent))
from store_ingest import INSERT_ROW, create_plain, make_events


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def read_sql(path: Path, sql: str, params: tuple[str, ...]) -> pd.DataFrame:
    conn = sqlite3.connect(path)
    try:
        return pd.read_sql_query(sql, conn, params=params)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--episode", type=int, default=100, help="steps per episode")
    args = parser.parse_args()
    run_id = new_run_id()
    events = make_events(run_id, args.rows, 1000, args.episode)
    other = [
        msgspec.structs.replace(e, worker_id="000002")
        for e in make_events(run_id, 10_000, 1000, args.episode)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path, plain = Path(tmp, "read.sqlite"), Path(tmp, "plain.sqlite")
        w = acquire_writer(path)
        w.create_run(run_id=run_id, name="bench", created_at=time.time(), digest="", config={})
        for wid in ("000001", "000002"):
            w.upsert_worker(run_id, wid, status="completed", started_at=time.time())
        w.add_events(events)
        w.add_events(other)
        w.flush()
        w.release()
        store = TelemetryStore(path)
        df = store.steps(run_id, worker_id=1)
        assert len(df) == args.rows, len(df)
        # The plain table gets exactly the rows the view gives.
        conn = create_plain(plain)
        src = sqlite3.connect(path)
        conn.execute("BEGIN")
        conn.executemany(INSERT_ROW, src.execute("SELECT * FROM steps"))
        conn.execute("COMMIT")
        conn.close()
        src.close()
        where = ("SELECT * FROM steps WHERE run_id = ? AND worker_id = ?", (run_id, "000001"))
        t_store = best(lambda: store.steps(run_id, worker_id=1), args.repeat)
        t_plain = best(lambda: read_sql(plain, *where), args.repeat)
        t_view = best(lambda: read_sql(path, *where), 1)
        assert len(read_sql(plain, *where)) == args.rows
    n = args.rows
    print(f"rows: {n:,} ({args.episode}-step episodes, chunks of up to 1000 steps)")
    print(f"TelemetryStore.steps:              {t_store:.3f} s ({n / t_store:>10,.0f} rows/s)")
    print(f"pd.read_sql_query, plain table:    {t_plain:.3f} s ({n / t_plain:>10,.0f} rows/s)")
    print(f"pd.read_sql_query, steps view:     {t_view:.3f} s ({n / t_view:>10,.0f} rows/s)")
    print(f"speed-up vs plain table: {t_plain / t_store:.2f}x; vs view: {t_view / t_store:.2f}x")


if __name__ == "__main__":
    main()
