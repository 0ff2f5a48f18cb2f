"""What recording every step costs the training loop.

Runs the real worker (``python -m nbtrain.worker``) with q_learning on FrozenLake-v1 and
CliffWalking-v1, once recording every step (``telemetry.steps="all"``) and once recording
none, alternating, several times; the telemetry pipe is drained and decoded by a reader
thread in this process, as the kernel would. Speed is steps per second of training, from
the first episode's start to the last episode's end (``Episodes`` timestamps), so process
start-up and env construction are not counted. Goal: time ratio all / none <= 1.15.

    python benchmarks/worker_overhead.py [--seconds 5] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from nbtrain.dispatch.runfiles import write_worker_config
from nbtrain.ids import new_run_id
from nbtrain.wire.codec import FrameDecoder
from nbtrain.wire.events import Ended, Episode, Episodes, Steps
from nbtrain.worker.config_file import AgentRef, TelemetrySpec, WorkerConfig

ENVS = ("FrozenLake-v1", "CliffWalking-v1")
GOAL = 1.15


def run_once(folder: Path, env_id: str, steps: str, episodes: int) -> dict[str, Any]:
    config = WorkerConfig(
        run_id=new_run_id(),
        worker_id="000001",
        env_id=env_id,
        agent=AgentRef(kind="builtin", name="q_learning"),
        episodes=episodes,
        seed=1,
        telemetry=TelemetrySpec(steps=steps),  # type: ignore[arg-type]
    )
    path = folder / f"worker-{env_id}-{steps}.json"
    write_worker_config(config, path)
    read_fd, write_fd = os.pipe()
    env = dict(os.environ, NBTRAIN_TELEMETRY_FD=str(write_fd))
    env.pop("NBTRAIN_CONTROL_FD", None)
    env.pop("WORKER_ID", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbtrain.worker", "--config", str(path), "--worker-id", "1"],
        pass_fds=(write_fd,),
        env=env,
        stdout=subprocess.DEVNULL,
    )
    os.close(write_fd)
    episodes_seen: list[Episode] = []
    totals = {"bytes": 0, "step_rows": 0, "frames": 0}
    ended: list[Ended] = []

    def reader() -> None:
        decoder = FrameDecoder()
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            while data := pipe.read(1 << 16):
                totals["bytes"] += len(data)
                for item in decoder.feed(data):
                    if isinstance(item, Steps):
                        totals["step_rows"] += len(item)
                    elif isinstance(item, Episodes):
                        episodes_seen.extend(item.expand())
                    elif isinstance(item, Ended):
                        ended.append(item)
        totals["frames"] = decoder.frames

    thread = threading.Thread(target=reader)
    thread.start()
    code = proc.wait()
    thread.join()
    if code != 0 or not ended or ended[0].status != "completed":
        raise RuntimeError(f"worker for {env_id}/{steps} ended with exit code {code}")
    n_steps = sum(e.length for e in episodes_seen)
    seconds = episodes_seen[-1].ended_at - episodes_seen[0].started_at
    return {"steps": n_steps, "seconds": seconds, "rate": n_steps / seconds, **totals}


def calibrate(folder: Path, env_id: str, seconds: float) -> int:
    """Episodes that take about ``seconds`` with every step recorded."""
    episodes = 1000
    for _ in range(2):  # twice: episodes get shorter as the agent learns
        result = run_once(folder, env_id, "all", episodes)
        episodes = max(100, int(episodes * seconds / result["seconds"]))
    return episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument("--reps", type=int, default=3, help="runs per setting (alternating)")
    parser.add_argument("--env", action="append", choices=ENVS, help="default: both")
    args = parser.parse_args()
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for env_id in args.env or ENVS:
            episodes = calibrate(folder, env_id, args.seconds)
            rates: dict[str, list[float]] = {"all": [], "none": []}
            for rep in range(args.reps):
                order = ("all", "none") if rep % 2 == 0 else ("none", "all")
                for steps in order:
                    r = run_once(folder, env_id, steps, episodes)
                    rates[steps].append(r["rate"])
                    print(
                        f"{env_id:16} steps={steps:4} rep {rep + 1}: {r['steps']:>8} steps in "
                        f"{r['seconds']:5.2f} s = {r['rate']:>8.0f} steps/s, "
                        f"{r['step_rows']:>8} rows / {r['frames']:>6} frames / "
                        f"{r['bytes'] / 1e6:6.1f} MB on the pipe",
                        flush=True,
                    )
            all_rate = statistics.median(rates["all"])
            none_rate = statistics.median(rates["none"])
            ratios[env_id] = none_rate / all_rate
            best = max(rates["none"]) / max(rates["all"])
            print(
                f"{env_id}: median {all_rate:.0f} steps/s recording all, {none_rate:.0f} "
                f"recording none -> time ratio all/none = {ratios[env_id]:.3f} "
                f"(best of {args.reps}: {best:.3f})",
                flush=True,
            )
    worst = max(ratios.values())
    verdict = "meets" if worst <= GOAL else "MISSES"
    print(f"worst median ratio {worst:.3f} {verdict} the goal of <= {GOAL}")


if __name__ == "__main__":
    main()
