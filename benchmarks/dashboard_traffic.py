"""Widget traffic of a RunDashboard attached to a real multi-worker run at full speed.

No browser: a view's "hello" is simulated, and every message the widget's comm sends is
counted (JSON bytes plus binary buffers) by wrapping the comm's ``send``. Prints messages/s
and bytes/s against Jupyter's default IOPub limits (1,000 msg/s, 1 MB/s); the goal is < 5 %.

    python benchmarks/dashboard_traffic.py --workers 4 --episodes 20000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import nbtrain
from nbtrain.widgets import RunDashboard

MSG_LIMIT = 1000.0  # ServerApp.iopub_msg_rate_limit
BYTES_LIMIT = 1_000_000.0  # ServerApp.iopub_data_rate_limit


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages = 0
        self.bytes = 0
        self.per_second: dict[int, int] = {}
        self.start = time.monotonic()

    def wrap(self, comm: Any) -> None:
        original = comm.send

        def send(data: Any = None, metadata: Any = None, buffers: Any = None) -> Any:
            size = len(json.dumps(data, default=str)) + sum(len(b) for b in buffers or [])
            with self.lock:
                self.messages += 1
                self.bytes += size
                second = int(time.monotonic() - self.start)
                self.per_second[second] = self.per_second.get(second, 0) + 1
            return original(data=data, metadata=metadata, buffers=buffers)

        comm.send = send


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="FrozenLake-v1")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--episodes", type=int, default=20_000)
    parser.add_argument("--frames", default="none", choices=["none", "ansi", "rgb_array"])
    parser.add_argument("--steps", default="all", help="telemetry steps: all, none or n")
    args = parser.parse_args()
    steps: Any = args.steps if args.steps in ("all", "none") else int(args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        config = nbtrain.TrainConfig(
            env_id=args.env,
            episodes=args.episodes,
            workers=args.workers,
            telemetry={"steps": steps, "frames": args.frames},
        )
        counter = Counter()
        run = nbtrain.launch(config, db=Path(tmp) / "bench.sqlite")
        dash = RunDashboard(run.run_id, db=run.db)
        counter.wrap(dash.comm)
        # a view renders: hello, and it shows the first worker's tab
        for rid, method, params in (
            ("h", "hello", {}),
            ("f", "focus", {"view": "v", "worker_id": "000001"}),
        ):
            dash._handle_custom_msg(
                {"kind": "request", "id": rid, "method": method, "params": params}, []
            )
        start = time.monotonic()
        statuses = run.wait()
        run_seconds = time.monotonic() - start
        if dash._ticker is not None:
            dash._ticker.join(timeout=5)
        elapsed = time.monotonic() - start
        summary = run.summary()
        dash.close()
    episodes = int(summary["episodes"].sum())
    steps_total = int(summary["steps"].sum())
    msg_rate = counter.messages / elapsed
    byte_rate = counter.bytes / elapsed
    peak = max(counter.per_second.values(), default=0)
    print(
        f"run: {args.workers} workers x {args.episodes} episodes of {args.env}, "
        f"frames={args.frames}, steps={args.steps}: {statuses}"
    )
    print(
        f"  {episodes} episodes, {steps_total} steps in {run_seconds:.1f} s "
        f"({steps_total / run_seconds:,.0f} steps/s)"
    )
    print(
        f"dashboard traffic over {elapsed:.1f} s: {counter.messages} messages, "
        f"{counter.bytes:,} bytes"
    )
    print(
        f"  {msg_rate:.1f} msg/s ({100 * msg_rate / MSG_LIMIT:.2f} % of {MSG_LIMIT:.0f}), "
        f"peak {peak} msg in one second"
    )
    print(f"  {byte_rate:,.0f} B/s ({100 * byte_rate / BYTES_LIMIT:.2f} % of 1 MB/s)")
    ok = msg_rate < 0.05 * MSG_LIMIT and byte_rate < 0.05 * BYTES_LIMIT
    print("goal (< 5 % of both limits):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
