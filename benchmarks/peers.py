"""The same training run logged with the tools a user might pick instead of nbtrain.

Workload: the bare FrozenLake-v1 (not slippery) Q-learning loop of ``bare_qlearning.py``.
Each tool logs, in the loop, per step ``reward`` and ``td_error`` (mode ``step``) and per
episode ``total_reward`` and ``length`` (both modes); nbtrain runs the same trajectory
through ``launch`` with ``telemetry.steps`` "all" and "none" (it stores more per step:
action, observation, flags, ε, time). For every tool and mode:

- wall ratio: the whole logging process (start to exit) over the bare process, same
  episodes, run alternately; and the CPU ratio (the process and all it waited for: for
  nbtrain the workers too), which a busy machine distorts far less;
- bytes on disk of everything the tool wrote;
- time to read every logged value back into pandas DataFrames (in a fresh process, with
  the tool's own reader) and whether that read is lossless: every value there, equal to the
  one logged (compared with a recomputed run; float32 storage counts as lossy).

Slow tools run fewer episodes (the count is printed); the bare run always matches it.
A tool that is not installed is skipped, and the output says so. Install the peers with
the ``bench`` extra (``pip install nbtrain[bench]``).

    python benchmarks/peers.py [--episodes 20000] [--rounds 2] [--tools tensorboardX,mlflow]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bare_qlearning  # noqa: E402
from peer_tools import READERS, WRITERS  # noqa: E402

TOOLS = ("nbtrain", "tensorboardX", "mlflow", "aim", "wandb")
MODULES = {"nbtrain": "nbtrain", "tensorboardX": "tensorboardX", "mlflow": "mlflow",
           "aim": "aim", "wandb": "wandb"}  # fmt: skip
# Episodes run by a tool = --episodes / this; per-call costs of a millisecond make a full
# run of the slow ones take many minutes.
SLOW = {("mlflow", "step"): 100, ("mlflow", "episode"): 10, ("aim", "step"): 5,
        ("wandb", "step"): 5}  # fmt: skip
SEED = 778897206  # nbtrain's seed of worker 000001 in a run of seed 0 (peer_tools checks)


def installed(tool: str) -> bool:
    return importlib.util.find_spec(MODULES[tool]) is not None


def child(args: list[str]) -> dict[str, Any]:
    """Run this script in a fresh process; return its JSON line, its wall time and the CPU
    time of it and every process it waited for (an nbtrain run's workers too)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = usage.ru_utime + usage.ru_stime
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    result["cpu"] = cpu
    return result


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def expected_values(episodes: int) -> dict[str, list[float]]:
    """Every value the loop logs, recomputed (the trajectory is deterministic)."""
    values: dict[str, list[float]] = {"reward": [], "td_error": [], "total_reward": [],
                                      "length": []}  # fmt: skip

    def on_step(ep: int, t: int, action: int, reward: float, obs: int, td: float) -> None:
        values["reward"].append(float(reward))
        values["td_error"].append(td)

    def on_episode(ep: int, total: float, length: int) -> None:
        values["total_reward"].append(total)
        values["length"].append(float(length))

    bare_qlearning.train(SEED, episodes, on_step=on_step, on_episode=on_episode)
    return values


def run_child(tool: str, mode: str, episodes: int, folder: str) -> dict[str, Any]:
    """In the child: train while logging with ``tool``; report the step count."""
    result = WRITERS[tool](mode, episodes, Path(folder), SEED)
    return {"steps": result["steps"], "reward_sum": result["reward_sum"]}


def read_child(tool: str, mode: str, episodes: int, folder: str) -> dict[str, Any]:
    """In the child: read everything back with the tool's reader, then check it (the
    tool and pandas are imported first: the time is the read's, not the imports')."""
    importlib.import_module(MODULES[tool])
    importlib.import_module("pandas")
    t0, cpu0 = time.perf_counter(), time.process_time()
    frames = READERS[tool](mode, Path(folder))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    want = expected_values(episodes)
    keys = ["total_reward", "length"] + (["reward", "td_error"] if mode == "step" else [])
    problems = []
    counts = {}
    for key in keys:
        got = frames.get(key)
        counts[key] = 0 if got is None else len(got)
        if got is None:
            problems.append(f"{key}: missing")
            continue
        if len(got) != len(want[key]):
            problems.append(f"{key}: {len(got)} of {len(want[key])} values")
            continue
        diff = sum(1 for a, b in zip(got, want[key], strict=True) if float(a) != b)
        if diff:
            problems.append(f"{key}: {diff} values differ (e.g. float32 storage)")
    return {"read_s": seconds, "read_cpu": cpu, "counts": counts, "problems": problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tools", help=f"comma-separated subset of {','.join(TOOLS)}")
    parser.add_argument("--child", nargs=4, metavar=("TOOL", "MODE", "EPISODES", "DIR"))
    parser.add_argument("--read", nargs=4, metavar=("TOOL", "MODE", "EPISODES", "DIR"))
    parser.add_argument("--bare", type=int, metavar="EPISODES")
    args = parser.parse_args()
    if args.child or args.read:
        tool, mode, episodes, folder = args.child or args.read
        fn = run_child if args.child else read_child
        print(json.dumps(fn(tool, mode, int(episodes), folder)))
        return
    if args.bare:
        result = bare_qlearning.train(SEED, args.bare)
        print(json.dumps({"steps": result["steps"], "reward_sum": result["reward_sum"]}))
        return
    from vs_bare import byte_compile_nbtrain  # the children start as a pip install would

    byte_compile_nbtrain()
    tools = args.tools.split(",") if args.tools else list(TOOLS)
    for tool in tools:
        if tool not in TOOLS:
            parser.error(f"unknown tool {tool!r}; choose from {', '.join(TOOLS)}")
    rows = []
    for tool in tools:
        if not installed(tool):
            print(f"{tool}: not installed, skipped (pip install nbtrain[bench])", flush=True)
            continue
        for mode in ("step", "episode"):
            rows.append(measure(tool, mode, args.episodes, args.rounds))
    print("\n| tool | logged | episodes | wall vs bare | CPU vs bare | bytes on disk "
          "| read into pandas (CPU) | lossless |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['tool']} | {r['mode']} | {r['episodes']:,} ({r['steps']:,} steps) | "
              f"{r['ratio']:.2f}x [{r['lo']:.2f}-{r['hi']:.2f}] | {r['cpu']:.2f}x | "
              f"{r['bytes'] / 1e6:.1f} MB | {r['read_s']:.2f} s ({r['read_cpu']:.2f} s) | "
              f"{r['lossless']} |")  # fmt: skip


def measure(tool: str, mode: str, episodes_total: int, rounds: int) -> dict[str, Any]:
    episodes = max(100, episodes_total // SLOW.get((tool, mode), 1))
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    size = 0
    read: dict[str, Any] = {}
    steps = 0
    for r in range(rounds):
        folder = Path(tempfile.mkdtemp(prefix=f"peers-{tool}-"))
        try:
            order = ("bare", tool) if r % 2 == 0 else (tool, "bare")
            walls = {}
            for which in order:
                if which == "bare":
                    res = child(["--bare", str(episodes)])
                else:
                    res = child(["--child", tool, mode, str(episodes), str(folder)])
                walls[which] = res
            if walls["bare"]["steps"] != walls[tool]["steps"]:
                raise AssertionError(f"{tool}: {walls[tool]['steps']} steps, bare "
                                     f"{walls['bare']['steps']}: trajectories differ")  # fmt: skip
            steps = walls["bare"]["steps"]
            ratios.append(walls[tool]["wall"] / walls["bare"]["wall"])
            cpu_ratios.append(walls[tool]["cpu"] / walls["bare"]["cpu"])
            if r == rounds - 1:
                size = disk_bytes(folder)
                read = child(["--read", tool, mode, str(episodes), str(folder)])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    lossless = "yes" if not read["problems"] else "no: " + "; ".join(read["problems"])
    row = {"tool": tool, "mode": "per step" if mode == "step" else "per episode",
           "episodes": episodes, "steps": steps, "ratio": statistics.median(ratios),
           "lo": min(ratios), "hi": max(ratios), "cpu": statistics.median(cpu_ratios),
           "bytes": size, "read_s": read["read_s"], "read_cpu": read["read_cpu"],
           "lossless": lossless}  # fmt: skip
    print(f"{tool:12} {mode:7} {episodes:>7,} episodes: wall {row['ratio']:.2f}x bare, "
          f"CPU {row['cpu']:.2f}x, {size / 1e6:.1f} MB, read {read['read_s']:.2f} s "
          f"(CPU {read['read_cpu']:.2f} s), lossless: {lossless}",
          flush=True)  # fmt: skip
    return row


if __name__ == "__main__":
    os.environ.setdefault("WANDB_SILENT", "true")
    main()
