"""Notebook responsiveness: latency of a trivial cell in a real kernel while 4 workers
stream every step at full speed into the kernel's SQLite writer.

Starts an IPython kernel with jupyter_client, times ``1 + 1`` round trips (execute request
to execute reply) with the kernel idle, then again while a 4-worker run records every
step, and prints the percentiles and their ratio. Goal: p99 < 50 ms under load.

    python benchmarks/kernel_latency.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from jupyter_client.manager import start_new_kernel


def execute(client: Any, code: str, timeout: float = 60.0) -> float:
    """Run ``code``; return seconds from request to reply. Raises on an error reply."""
    t0 = time.perf_counter()
    msg_id = client.execute(code, store_history=False)
    while True:
        reply = client.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    elapsed = time.perf_counter() - t0
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code!r} failed: {reply['content']}")
    return elapsed


def sample(client: Any, seconds: float, pause: float = 0.02) -> list[float]:
    times = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        times.append(execute(client, "1 + 1"))
        time.sleep(pause)
    return times


def percentiles(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": q[49] * 1e3, "p95": q[94] * 1e3, "p99": q[98] * 1e3, "max": ordered[-1] * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        manager, client = start_new_kernel(kernel_name="python3", cwd=folder)
        try:
            execute(client, "import nbtrain, nbtrain.store, nbtrain.config")
            idle = percentiles(sample(client, args.seconds))
            db = Path(folder) / "latency.sqlite"
            execute(
                client,
                "run = nbtrain.launch(dict(env_id='FrozenLake-v1', agent='q_learning', "
                "episodes=10**7, max_steps_per_episode=100, workers=4), "
                f"db={str(db)!r})",
            )
            time.sleep(1.0)
            busy = percentiles(sample(client, args.seconds))
            execute(client, "steps = run.summary()['steps'].sum(); run.stop()")
            client.execute("print(steps)")
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    print(f"trivial cell latency over {args.seconds:.0f} s each (ms):")
    for name, stats in (("idle kernel", idle), ("4 workers streaming", busy)):
        print(f"  {name:20s} " + "  ".join(f"{k} {v:6.1f}" for k, v in stats.items()))
    print(f"  p99 ratio busy/idle: {busy['p99'] / idle['p99']:.2f}")
    print(f"  goal p99 < 50 ms under load: {'OK' if busy['p99'] < 50 else 'MISSED'}")


if __name__ == "__main__":
    main()
