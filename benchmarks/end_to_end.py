"""End to end: every step recorded and stored in SQLite vs no steps recorded (same config).

Launches real runs through ``nbtrain.launch`` (worker subprocesses, pipes, ingest thread,
the SQLite writer) with 1 and with 4 workers, alternating "all" and "none", and prints:

- the wall-time ratio all / none per worker count (goals: <= 1.15 with 1 worker,
  <= 1.35 with 4 workers on a 2-core machine, where storing competes with training);
- the kernel's CPU per stored step (process CPU of this process, all its threads, for the
  "all" runs minus the "none" runs, divided by the steps stored).

Both modes train the same episodes (seeds come from the config, not the telemetry
setting), so the step counts match and the ratio compares equal work.

    python benchmarks/end_to_end.py [--seconds 10] [--reps 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import nbtrain

GOALS = {1: 1.15, 4: 1.35}


def config(workers: int, steps: str, episodes: int) -> nbtrain.TrainConfig:
    return nbtrain.TrainConfig(
        env_id="FrozenLake-v1",
        agent="q_learning",
        episodes=episodes,
        max_steps_per_episode=100,
        workers=workers,
        seed=0,
        telemetry={"steps": steps},
    )


def run_once(db: Path, workers: int, steps: str, episodes: int) -> dict[str, Any]:
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    run = nbtrain.launch(config(workers, steps, episodes), db=db)
    statuses = run.wait()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    assert set(statuses.values()) == {"completed"}, statuses
    total_steps = int(run.summary()["steps"].sum())
    stored = len(run.steps(columns=["step_index"])) if steps == "all" else 0
    return {"wall": wall, "cpu": cpu, "steps": total_steps, "stored": stored}


def calibrate(db: Path, workers: int, seconds: float) -> int:
    """Episodes per worker so a "none" run lasts about ``seconds``. Early episodes are
    faster than late ones (the agent learns to reach the goal), so the estimate from a
    short probe is refined with a second, longer one."""
    episodes = 2000
    for _ in range(3):
        wall = run_once(db, workers, "none", episodes)["wall"]
        if wall >= 0.8 * seconds:
            break
        episodes = max(episodes, int(episodes * seconds / max(wall, 1e-3)))
    return episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for workers in (1, 4):
            db = Path(folder) / f"bench-{workers}.sqlite"
            episodes = calibrate(db, workers, args.seconds)
            results: dict[str, list[dict[str, Any]]] = {"none": [], "all": []}
            for _ in range(args.reps):
                for mode in ("none", "all"):
                    results[mode].append(run_once(db, workers, mode, episodes))
            none, every = results["none"], results["all"]
            assert {r["steps"] for r in none} == {r["steps"] for r in every}
            wall_none = statistics.median(r["wall"] for r in none)
            wall_all = statistics.median(r["wall"] for r in every)
            cpu_none = statistics.median(r["cpu"] for r in none)
            cpu_all = statistics.median(r["cpu"] for r in every)
            stored = every[0]["stored"]
            assert stored == every[0]["steps"], "every step must be stored"
            ratio = wall_all / wall_none
            print(f"{workers} worker(s), {episodes} episodes each, {stored:,} steps stored per run")
            print(
                f"  wall: none {wall_none:.2f} s, all {wall_all:.2f} s -> ratio {ratio:.3f} "
                f"(goal <= {GOALS[workers]}) {'OK' if ratio <= GOALS[workers] else 'MISSED'}"
            )
            print(
                f"  training speed: none {every[0]['steps'] / wall_none:,.0f} steps/s, "
                f"all {every[0]['steps'] / wall_all:,.0f} steps/s (all workers)"
            )
            print(
                f"  kernel CPU: none {cpu_none:.2f} s, all {cpu_all:.2f} s -> "
                f"{(cpu_all - cpu_none) / stored * 1e6:.2f} us per stored step"
            )


if __name__ == "__main__":
    main()
