"""Ingest throughput: the store writer vs a bare row-per-step ``executemany``.

Both get the same ``Steps`` events (1000 steps each, discrete obs/action, a two-key extras
dict) and end with everything committed. The baseline does what straightforward code would:
a plain DESIGN-shaped ``steps`` table (one row per step, PK (run_id, worker_id, ep_index,
step_index)), zip the columns into row tuples, JSON-encode extras, ``executemany`` in one
transaction. The writer stores one chunk row per (event, episode); it is measured with long
episodes (one chunk per event), with short ones (``--short`` steps per episode, so about
1000/short chunks per event), and with one event per ``--episode``-step episode followed by
its ``Episode`` event (what a FrozenLake worker sends: it flushes its batch at every episode
end). Also printed, per stored step: CPU of the writer thread (the SQLite inserts) and of
the whole process (which includes encoding the events into chunks, done in the submitting
thread, and queueing them).

    python benchmarks/store_ingest.py [--rows 1000000] [--batch 1000] [--short 10] [--episode 30]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import msgspec

from nbtrain.ids import format_episode_id, new_run_id
from nbtrain.store import schema
from nbtrain.store.writer import acquire_writer
from nbtrain.wire.events import Episode, Event, Steps

PLAIN_STEPS_DDL = """CREATE TABLE steps (
    run_id TEXT NOT NULL, worker_id TEXT NOT NULL, ep_index INTEGER NOT NULL,
    step_index INTEGER NOT NULL, action, reward REAL, terminated INTEGER, truncated INTEGER,
    obs, extras TEXT, ts REAL, PRIMARY KEY (run_id, worker_id, ep_index, step_index)
) WITHOUT ROWID"""
INSERT_ROW = f"INSERT INTO steps VALUES ({', '.join('?' * len(schema.STEP_COLUMNS))})"


def make_events(run_id: str, rows: int, batch: int, episode: int | None = None) -> list[Steps]:
    """``rows`` steps in events of ``batch``; ``episode`` steps per episode (default: one
    episode per event)."""
    per_episode = episode or batch
    events = []
    for b in range(rows // batch):
        first = b * batch
        ep = [(first + i) // per_episode for i in range(batch)]
        idx = [(first + i) % per_episode for i in range(batch)]
        events.append(
            Steps(
                run_id=run_id,
                worker_id="000001",
                ep_index=ep,
                step_index=idx,
                action=[i % 4 for i in idx],
                reward=[float(i % 2) for i in idx],
                terminated=[i == per_episode - 1 for i in idx],
                truncated=[False] * batch,
                obs=[i % 16 for i in idx],
                extras=[{"epsilon": 0.5, "td_error": i * 0.01} for i in idx],
                ts=[1.7e9 + (first + i) * 1e-4 for i in range(batch)],
            )
        )
    return events


def with_episodes(events: list[Steps]) -> list[list[Event]]:
    """Each one-episode ``Steps`` event submitted with the ``Episode`` event that ends it."""
    out: list[list[Event]] = []
    for e in events:
        ep = e.ep_index[0]
        done = Episode(run_id=e.run_id, worker_id=e.worker_id, ep_index=ep,
                       episode_id=format_episode_id(e.run_id, ep, e.worker_id),
                       total_reward=sum(e.reward), length=len(e), terminated=True,
                       truncated=False, seed=ep, started_at=e.ts[0], ended_at=e.ts[-1])  # fmt: skip
        out.append([e, done])
    return out


def create_plain(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(PLAIN_STEPS_DDL)
    return conn


def bare(path: Path, events: list[Steps]) -> tuple[float, float]:
    conn = create_plain(path)
    encode = msgspec.json.encode
    cpu = time.process_time()
    start = time.perf_counter()
    conn.execute("BEGIN")
    for e in events:
        n = len(e)
        conn.executemany(
            INSERT_ROW,
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
    cpu = time.process_time() - cpu
    conn.close()
    return elapsed, cpu


def writer(path: Path, events: list[list[Event]]) -> tuple[float, float, float]:
    """Wall seconds, writer-thread CPU seconds, process CPU seconds."""
    w = acquire_writer(path)
    try:
        clock = time.pthread_getcpuclockid(w._thread.ident or threading.get_ident())
        thread0 = time.clock_gettime(clock)
        cpu = time.process_time()
        start = time.perf_counter()
        for group in events:
            w.add_events(group)
        w.flush()
        elapsed = time.perf_counter() - start
        thread_cpu = time.clock_gettime(clock) - thread0
        cpu = time.process_time() - cpu
        assert w.failed_writes == 0, w.stats()
    finally:
        w.release()
    return elapsed, thread_cpu, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--short", type=int, default=10, help="steps per short episode")
    parser.add_argument("--episode", type=int, default=30, help="steps per one-episode event")
    args = parser.parse_args()
    run_id = new_run_id()
    events = make_events(run_id, args.rows, args.batch)
    short = make_events(run_id, args.rows, args.batch, args.short)
    rows = len(events) * args.batch
    per_episode = with_episodes(make_events(run_id, rows, args.episode, args.episode))
    with tempfile.TemporaryDirectory() as tmp:
        t_bare, c_bare = bare(Path(tmp, "bare.sqlite"), events)
        results = {
            "long": writer(Path(tmp, "long.sqlite"), [[e] for e in events]),
            "short": writer(Path(tmp, "short.sqlite"), [[e] for e in short]),
            "episode": writer(Path(tmp, "episode.sqlite"), per_episode),
        }
        stored = rows - rows % args.episode
        for name, n in (("bare", rows), ("long", rows), ("short", rows), ("episode", stored)):
            count = sqlite3.connect(Path(tmp, f"{name}.sqlite")).execute(
                "SELECT COUNT(*) FROM steps"
            )
            assert count.fetchone()[0] == n, name
    print(f"rows: {rows:,} in events of {args.batch}")
    print(
        f"bare executemany (row per step):  {rows / t_bare:>10,.0f} rows/s ({t_bare:.2f} s, "
        f"{c_bare / rows * 1e6:.2f} us CPU/step)"
    )
    labels = {
        "long": "1 episode/event",
        "short": f"{args.short}-step episodes",
        "episode": f"{args.episode}-step events",
    }
    for key, (wall, thread_cpu, cpu) in results.items():
        print(
            f"store writer, {labels[key]:<17} {rows / wall:>10,.0f} rows/s ({wall:.2f} s) "
            f"-> {t_bare / wall:.2f}x bare; writer thread {thread_cpu / rows * 1e6:.2f} us "
            f"CPU/step, process {cpu / rows * 1e6:.2f} us CPU/step"
        )


if __name__ == "__main__":
    main()
