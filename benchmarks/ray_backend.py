"""The same runs on both backends: what running workers as Ray actors costs.

Real runs through ``nbtrain.launch`` (FrozenLake, Q-learning, every step stored) with 2 and
4 workers, alternating ``backend="local"`` and ``backend="ray"`` on one local Ray instance
started once (so Ray's own start-up is not counted; it is printed separately). Prints:

- the wall-time ratio Ray / local per worker count (goal: <= 1.3 for runs of >= 10 s);
- launch-to-first-stored-episode latency, Ray already running (goal: <= 3 s), and for the
  local backend for comparison;
- telemetry throughput into the store: stored steps per second of wall time.

By default the Ray backend keeps an actor whose worker ended warm for the next worker
(``RayBackend(keep_warm=60)``), so after the first launch no run waits for new Ray worker
processes; ``--keep-warm 0`` measures a fresh actor (a new Ray process) per worker instead.

    python benchmarks/ray_backend.py [--seconds 10] [--reps 2] [--workers 2 4] [--keep-warm 60]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import nbtrain
from nbtrain.dispatch.ray_backend import RayBackend

GOAL_RATIO = 1.3
GOAL_LATENCY_S = 3.0


def config(workers: int, episodes: int) -> nbtrain.TrainConfig:
    return nbtrain.TrainConfig(
        env_id="FrozenLake-v1",
        agent="q_learning",
        episodes=episodes,
        max_steps_per_episode=100,
        workers=workers,
        seed=0,
    )


def first_episode_at(db: Path, run_id: str, t0: float, timeout: float = 120.0) -> float:
    """Seconds from ``t0`` until the run's first episode row is committed."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            with sqlite3.connect(db) as con:
                row = con.execute(
                    "SELECT 1 FROM episodes WHERE run_id = ? LIMIT 1", (run_id,)
                ).fetchone()
        except sqlite3.OperationalError:
            row = None
        if row:
            return time.perf_counter() - t0
        time.sleep(0.005)
    raise TimeoutError("no episode stored")


def run_once(db: Path, backend: Any, workers: int, episodes: int) -> dict[str, float]:
    t0 = time.perf_counter()
    run = nbtrain.launch(config(workers, episodes), db=db, backend=backend)
    latency = first_episode_at(db, run.run_id, t0)
    statuses = run.wait()
    wall = time.perf_counter() - t0
    assert set(statuses.values()) == {"completed"}, statuses
    with sqlite3.connect(db) as con:
        (steps,) = con.execute(
            "SELECT COUNT(*) FROM steps WHERE run_id = ?", (run.run_id,)
        ).fetchone()
    return {"wall": wall, "latency": latency, "steps": steps, "throughput": steps / wall}


def calibrate(db: Path, workers: int, seconds: float) -> int:
    """Episodes per worker so a local run lasts about ``seconds``."""
    episodes = 500
    for _ in range(3):
        wall = run_once(db, "local", workers, episodes)["wall"]
        episodes = max(50, int(episodes * seconds / max(wall, 0.1)))
    return episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--latency-reps", type=int, default=5)
    parser.add_argument("--keep-warm", type=float, default=60.0,
                        help="RayBackend(keep_warm=...): 0 = a fresh actor per worker")  # fmt: skip
    args = parser.parse_args()
    # One logical CPU per worker: Ray schedules by reservation, not by real cores.
    t0 = time.perf_counter()
    ray_backend = RayBackend(
        local_num_cpus=max(max(args.workers), os.cpu_count() or 1), keep_warm=args.keep_warm
    )
    ray_backend.connect()
    print(f"{os.cpu_count()} CPUs; local Ray instance started in {time.perf_counter() - t0:.1f} s"
          f"; keep_warm={args.keep_warm:g}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite"
        run_once(db, ray_backend, 1, 5)  # warm: the actor class is exported once
        lat: dict[str, list[float]] = {"local": [], "ray": []}
        for _ in range(args.latency_reps):
            for name, backend in (("local", "local"), ("ray", ray_backend)):
                lat[name].append(run_once(db, backend, 2, 20)["latency"])
        for name, values in lat.items():
            print(f"launch -> first stored episode [{name}]: median "
                  f"{statistics.median(values):.2f} s, max {max(values):.2f} s "
                  f"(2 workers, {len(values)} runs)")  # fmt: skip
        ok = statistics.median(lat["ray"]) <= GOAL_LATENCY_S
        print(f"  goal <= {GOAL_LATENCY_S} s with Ray running: {'met' if ok else 'NOT met'}")
        for workers in args.workers:
            episodes = calibrate(db, workers, args.seconds)
            results: dict[str, list[dict[str, float]]] = {"local": [], "ray": []}
            for _ in range(args.reps):
                for name, backend in (("local", "local"), ("ray", ray_backend)):
                    results[name].append(run_once(db, backend, workers, episodes))
            walls = {n: statistics.median(r["wall"] for r in rs) for n, rs in results.items()}
            tput = {n: statistics.median(r["throughput"] for r in rs) for n, rs in results.items()}
            ratio = walls["ray"] / walls["local"]
            print(f"\n{workers} workers x {episodes} episodes ({results['local'][0]['steps']:,} "
                  f"steps stored per run), median of {args.reps}:")  # fmt: skip
            for name in ("local", "ray"):
                print(f"  {name:5}: wall {walls[name]:6.2f} s, "
                      f"{tput[name]:>9,.0f} stored steps/s")  # fmt: skip
            verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
            print(f"  wall ratio ray/local {ratio:.2f} (goal <= {GOAL_RATIO}: {verdict})")
    ray_backend.close()


if __name__ == "__main__":
    main()
