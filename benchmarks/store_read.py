"""Read throughput: ``TelemetryStore.steps(run_id, worker_id)`` vs ``pd.read_sql_query``.

One run, two workers; worker 000001 has ``--rows`` steps (discrete obs/action, extras). The
store returns finished dtypes (categorical worker id, UTC timestamps, bools, parsed extras);
``read_sql_query`` returns raw values, so the comparison favours the baseline.

    python benchmarks/store_read.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import pandas as pd

from nbtrain.ids import new_run_id
from nbtrain.store import TelemetryStore, acquire_writer

sys.path.insert(0, str(Path(__file__).parent))
from store_ingest import make_events


def best(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run_id = new_run_id()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "read.sqlite")
        w = acquire_writer(path)
        w.create_run(run_id=run_id, name="bench", created_at=time.time(), digest="", config={})
        for wid in ("000001", "000002"):
            w.upsert_worker(run_id, wid, status="completed", started_at=time.time())
        w.add_events(make_events(run_id, args.rows, 1000))
        other = make_events(run_id, 10_000, 1000)
        w.add_events([msgspec.structs.replace(e, worker_id="000002") for e in other])
        w.flush()
        w.release()
        store = TelemetryStore(path)
        df = store.steps(run_id, worker_id=1)
        assert len(df) == args.rows, len(df)

        def baseline() -> pd.DataFrame:
            conn = sqlite3.connect(path)
            try:
                return pd.read_sql_query(
                    "SELECT * FROM steps WHERE run_id = ? AND worker_id = ?",
                    conn,
                    params=(run_id, "000001"),
                )
            finally:
                conn.close()

        t_store = best(lambda: store.steps(run_id, worker_id=1), args.repeat)
        t_sql = best(baseline, args.repeat)
    print(f"rows: {args.rows:,}")
    print(f"pd.read_sql_query:     {t_sql:.3f} s ({args.rows / t_sql:,.0f} rows/s)")
    print(f"TelemetryStore.steps:  {t_store:.3f} s ({args.rows / t_store:,.0f} rows/s)")
    print(f"ratio (speed-up): {t_sql / t_store:.2f}x")


if __name__ == "__main__":
    main()
