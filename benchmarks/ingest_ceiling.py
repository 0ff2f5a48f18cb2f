"""How many steps per second can one kernel store? A load simulation, for both backends.

M synthetic senders (no environment, no agent: a process that writes pre-built wire frames
at a set rate, batched like a real worker: per 100 ms, ``Steps`` frames and one
``Episodes`` frame for the episodes of ``--episode-length`` steps that ended in it) feed one
kernel's real ingest thread and real SQLite store writer, either over subprocess pipes
(local backend) or as Ray actors
streaming batches back (Ray backend: its actor class, the sender in place of the worker loop).

The offered rate doubles until the kernel falls behind: stored steps/s below 95 % of the
offered rate, or the backlog still draining long after the senders stopped. For each level
it prints the offered and stored rates and the kernel's CPU (all its threads; 1.0 = one
core). The last level that kept up is the ceiling.

    python benchmarks/ingest_ceiling.py [--backend local|ray|both] [--senders 4]
                                        [--seconds 8] [--start 20000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from nbtrain.dispatch.backend import FdKind, WorkerHandle

FLUSH = 0.1


# -- the sender (runs as a subprocess, or in a Ray actor's process) ---------------------------
def sender(
    run_id: str, worker_id: str, rate: float, seconds: float, ep_len: int, write: Any = None
) -> int:
    """Write frames at ``rate`` steps/s for ``seconds``: onto NBTRAIN_TELEMETRY_FD, or
    through ``write(bytes)`` (the Ray actor's outbox)."""
    from nbtrain.wire.codec import FrameEncoder
    from nbtrain.wire.events import Ended, Episodes, Started, Steps
    from nbtrain.worker.sinks import write_all

    if write is None:
        fd = int(os.environ["NBTRAIN_TELEMETRY_FD"])

        def write(data: bytes) -> None:
            write_all(fd, data)

    # A negative episode length: episodes only (``telemetry.steps = "none"``).
    with_steps, ep_len = ep_len > 0, abs(ep_len)
    enc = FrameEncoder()
    out = bytearray()
    common = {"run_id": run_id, "worker_id": worker_id}
    enc.append(
        Started(**common, pid=os.getpid(), ts=time.time(), digest="", env_id="synthetic",
                agent="synthetic", mode="train", episodes=0, start_episode=0),
        out,
    )  # fmt: skip
    # Every tick's bytes are built first, so a sender costs only its writes.
    ticks: list[bytes] = [bytes(out)]
    out.clear()
    total = int(rate * seconds)
    sent, ep, step, tick = 0, 0, 0, 0
    while sent < total:
        tick += 1
        n = min(int(rate * FLUSH * tick), total) - sent
        now = time.time()
        ended: list[int] = []
        while n > 0:
            k = min(n, ep_len - step, 1024)
            if with_steps:
                enc.append(
                    Steps(**common, ep_index=[ep] * k, step_index=list(range(step, step + k)),
                          action=[1] * k, reward=[0.0] * k, terminated=[False] * k,
                          truncated=[False] * k, obs=[step] * k, extras=[None] * k, ts=[now] * k),
                    out,
                )  # fmt: skip
            step, n, sent = step + k, n - k, sent + k
            if step == ep_len:
                ended.append(ep)
                ep, step = ep + 1, 0
        if ended:
            k = len(ended)
            enc.append(
                Episodes(**common, ep_index=ended, total_reward=[0.0] * k, length=[ep_len] * k,
                         terminated=[True] * k, truncated=[False] * k, seed=ended,
                         started_at=[now] * k, ended_at=[now] * k, extras=[{}] * k),
                out,
            )  # fmt: skip
        ticks.append(bytes(out))
        out.clear()
    t0 = time.monotonic()
    for index, data in enumerate(ticks):
        time.sleep(max(t0 + FLUSH * index - time.monotonic(), 0.0))
        write(data)
    enc.append(
        Ended(**common, status="completed", episodes_done=ep, steps_done=sent, ts=time.time()),
        out,
    )
    write(bytes(out))
    return 0


# -- the kernel ---------------------------------------------------------------------------
def sender_command(run_id: str, wid: str, rate: float, seconds: float, ep_len: int) -> list[str]:
    here = str(Path(__file__).resolve())
    return [sys.executable, here, "--sender", run_id, wid, str(rate), str(seconds), str(ep_len)]


class LocalSender(WorkerHandle):
    """A sender subprocess seen as a WorkerHandle (its telemetry pipe, like a worker's)."""

    def __init__(self, run_id: str, wid: str, rate: float, seconds: float, ep_len: int) -> None:
        read, write = os.pipe()
        self.popen = subprocess.Popen(
            sender_command(run_id, wid, rate, seconds, ep_len),
            pass_fds=(write,),
            env=dict(os.environ, NBTRAIN_TELEMETRY_FD=str(write)),
        )
        os.close(write)
        self.telemetry = read
        self.worker_id, self.pid, self.pid_start, self.host = wid, self.popen.pid, None, ""
        self.started_at, self.stop_requested = time.time(), False

    def fds(self) -> dict[int, FdKind]:
        return {self.telemetry: "telemetry"}

    def close_fd(self, fd: int) -> None:
        os.close(fd)

    def poll(self) -> int | None:
        return self.popen.poll()

    def request_stop(self) -> None:
        self.stop_requested = True

    def stop(self, timeout: float) -> int:
        self.popen.kill()
        return self.popen.wait()

    def close_control(self) -> None:
        return None


def ray_sender_factory(ray: Any) -> Any:
    from nbtrain.dispatch.outbox import TELEMETRY
    from nbtrain.dispatch.ray_actor import WorkerActor
    from nbtrain.dispatch.ray_handle import RayWorkerHandle

    class SenderActor(WorkerActor):
        """The Ray backend's actor with the sender in place of the worker loop (same
        outbox, same stream)."""

        def __init__(self, *args: Any) -> None:
            from nbtrain.dispatch.outbox import Outbox
            from nbtrain.worker.control import StopFlag

            self.flag, self.outbox = StopFlag(), Outbox()
            self._thread = threading.Thread(target=self._send, args=args, daemon=True)
            self._thread.start()

        def _send(self, *args: Any) -> None:
            code = sender(*args, write=lambda data: self.outbox.put(TELEMETRY, data))
            self.outbox.end(code)

    remote = ray.remote(max_concurrency=4)(SenderActor)

    def start(run_id: str, wid: str, rate: float, seconds: float, ep_len: int) -> Any:
        actor = remote.options(num_cpus=0.1).remote(run_id, wid, rate, seconds, ep_len)
        return RayWorkerHandle(ray, actor, wid, f"bench-{wid}", (256 * 1024, 0.05), 16)

    return start


def level(start: Any, senders: int, rate: float, seconds: float, ep_len: int) -> dict[str, float]:
    from nbtrain.dispatch.ingest import Ingest
    from nbtrain.ids import new_run_id
    from nbtrain.live.hub import RunLive
    from nbtrain.store.writer import acquire_writer

    run_id = new_run_id()
    wids = [f"{i + 1:06d}" for i in range(senders)]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "ceiling.sqlite"
        writer = acquire_writer(db)
        done = threading.Event()
        left = [senders]

        def on_exit(stream: Any, outcome: Any) -> None:
            left[0] -= 1
            if not left[0]:
                done.set()

        ingest = Ingest(run_id, writer, RunLive(run_id, wids), on_exit)
        handles = [start(run_id, wid, rate / senders, seconds, ep_len) for wid in wids]
        for handle in handles:
            ingest.add(handle)
        # Time from the moment every sender runs (a Ray actor takes a while to be placed).
        while any(h.pid is None for h in handles) and not done.is_set():
            time.sleep(0.01)
        cpu0, t0 = time.process_time(), time.perf_counter()
        done.wait(seconds * 20 + 60)
        writer.flush()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        import sqlite3

        with sqlite3.connect(db) as con:
            (steps,) = con.execute("SELECT COUNT(*) FROM steps").fetchone()
            (episodes,) = con.execute("SELECT COUNT(*) FROM episodes").fetchone()
        size = sum(p.stat().st_size for p in Path(tmp).glob("ceiling.sqlite*"))
        writer.release()
    # Steps stored, or in episodes-only mode the steps the stored episodes stand for.
    stored = steps if ep_len > 0 else episodes * -ep_len
    stored = max(stored, 1)
    return {
        "offered": rate,
        "stored": stored / wall,
        "cpu": cpu / wall,
        "wall": wall,
        "rows": stored,
        "drain": wall - seconds,
        "us_per_step": cpu / stored * 1e6,
        "us_per_episode": cpu / max(episodes, 1) * 1e6,
        "bytes_per_step": size / stored,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--sender":
        run_id, wid, rate, seconds, ep_len = sys.argv[2:7]
        raise SystemExit(sender(run_id, wid, float(rate), float(seconds), int(ep_len)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["local", "ray", "both"], default="both")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--start", type=float, default=20_000, help="first offered steps/s")
    parser.add_argument("--episode-length", type=int, default=20)
    parser.add_argument("--max-levels", type=int, default=8)
    parser.add_argument(
        "--episodes-only", action="store_true", help='no Steps frames (telemetry.steps="none")'
    )
    args = parser.parse_args()
    backends = ["local", "ray"] if args.backend == "both" else [args.backend]
    print(f"{os.cpu_count()} CPUs; {args.senders} senders; {args.seconds:g} s per level; "
          f"episodes of {args.episode_length} steps"
          f"{' (episodes only)' if args.episodes_only else ''}")  # fmt: skip
    for name in backends:
        if name == "local":
            start: Any = LocalSender
        else:
            from nbtrain.dispatch.ray_backend import RayBackend

            backend = RayBackend()
            backend.connect()
            start = ray_sender_factory(backend._ray)
        print(f"\n[{name}] offered steps/s -> stored steps/s, kernel CPU (cores), drain s")
        rate, ceiling, costs = args.start, 0.0, []
        for _ in range(args.max_levels):
            ep_len = -args.episode_length if args.episodes_only else args.episode_length
            r = level(start, args.senders, rate, args.seconds, ep_len)
            # Every row arrives in the end; keeping up means the backlog drains at once.
            expected = int(r["offered"] / args.senders * args.seconds) * args.senders
            kept = r["rows"] >= expected and r["drain"] < max(1.5, 0.2 * args.seconds)
            print(f"  {r['offered']:>9,.0f} -> {r['stored']:>9,.0f}  cpu {r['cpu']:.2f}  "
                  f"{r['us_per_step']:.2f} us/step  {r['us_per_episode']:.1f} us/episode  "
                  f"{r['bytes_per_step']:.0f} B/step  drain {r['drain']:.1f}  "
                  f"{'ok' if kept else 'BEHIND'}", flush=True)  # fmt: skip
            costs.append(r["us_per_step"])
            if not kept:
                break
            ceiling = r["offered"]
            rate *= 2
        per_core = 1e6 / min(costs)
        print(f"[{name}] ceiling: {ceiling:,.0f} steps/s kept up on this machine; kernel CPU "
              f"{min(costs):.2f} us/step at best -> {per_core:,.0f} steps/s per core")  # fmt: skip


if __name__ == "__main__":
    main()
