"""Kernel memory after 1M vs 10M recorded steps: the kernel must not grow with run length.

Each size runs in a fresh Python process (the "kernel") that launches a 4-worker run
recording every step, samples its own resident memory while the run goes, waits for the
end, and reports peak and final RSS. Only the kernel process is measured (the workers are
separate processes). Goal: flat, i.e. the 10M/1M ratio of peak RSS close to 1.

    python benchmarks/kernel_memory.py [--small 1000000] [--large 10000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

KERNEL = r"""
import json, sys, threading, time, resource
import nbtrain

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

target = int(sys.argv[1])
workers = 4
# FrozenLake (slippery) with a fresh Q-table averages ~8 steps per episode early on and
# more later; aim a little high and count what was actually stored.
episodes = max(1, target // (workers * 8))
samples = []
run = nbtrain.launch(dict(env_id="FrozenLake-v1", agent="q_learning", episodes=episodes,
                          max_steps_per_episode=100, workers=workers), db=sys.argv[2])
done = threading.Event()
def sampler():
    while not done.is_set():
        samples.append(rss_mb())
        time.sleep(0.2)
thread = threading.Thread(target=sampler, daemon=True)
thread.start()
run.wait()
done.set()
thread.join()
# Measured before counting: the summary query below is not part of running.
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
final = rss_mb()
quarters = [samples[min(len(samples) - 1, len(samples) * q // 4)] for q in (1, 2, 3, 4)]
stored = int(run.summary()["steps"].sum())
print(json.dumps({"steps": stored, "peak_sampled_mb": max(samples), "final_mb": final,
                  "maxrss_mb": maxrss, "quarters_mb": quarters}))
"""


def measure(steps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run(
            [sys.executable, "-c", KERNEL, str(steps), f"{folder}/mem.sqlite"],
            capture_output=True,
            text=True,
            check=True,
            cwd=folder,
        )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=10_000_000)
    args = parser.parse_args()
    small, large = measure(args.small), measure(args.large)
    for name, r in (("small", small), ("large", large)):
        print(
            f"{name}: {r['steps']:>12,} steps stored; kernel peak RSS {r['maxrss_mb']:.0f} MB, "
            f"final {r['final_mb']:.0f} MB; RSS at 1/4, 1/2, 3/4, end of the run: "
            + ", ".join(f"{q:.0f}" for q in r["quarters_mb"])
            + " MB"
        )
    ratio = large["maxrss_mb"] / small["maxrss_mb"]
    print(
        f"peak RSS ratio large/small: {ratio:.2f} for {large['steps'] / small['steps']:.1f}x "
        f"the steps (goal: flat, about 1)"
    )


if __name__ == "__main__":
    main()
