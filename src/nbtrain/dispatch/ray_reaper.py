"""Ends what a kernel's own local Ray instance left behind when the kernel dies hard.

Ray fate-shares its head processes (GCS, raylet…) with the driver that started them, but
not everything under them: after a ``SIGKILL`` of the driver, Ray 2.60's dashboard and
runtime-env agents and the actors' worker processes were seen running (the agents spinning
a CPU) for a minute or more. So a kernel that starts a local instance marks it: every
process of that instance inherits ``NBTRAIN_RAY_OWNER=<kernel pid>:<its start token>`` in
its environment (set only while ``ray.init`` starts it; nothing else the notebook starts
carries it). And it starts this small watcher, ``python -m nbtrain.dispatch.ray_reaper
MARKER``, with a pipe on its stdin. At EOF (the kernel is gone, however it ended) the
watcher ends every process still carrying the marker; after a normal exit
``ray.shutdown()`` has already ended them all and it finds none.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from nbtrain.dispatch.backend import process_alive, process_start_token

OWNER_ENV = "NBTRAIN_RAY_OWNER"
#: After EOF, Ray's own fate-sharing gets this long before the reaper steps in.
GRACE_S = 1.0
TERM_S = 2.0


def owner_marker(pid: int) -> str:
    return f"{pid}:{process_start_token(pid)}"


def marked(marker: str) -> dict[int, str | None]:
    """The live processes whose environment carries ``marker``, each with its start token."""
    needle = f"{OWNER_ENV}={marker}".encode() + b"\0"
    found: dict[int, str | None] = {}
    me = os.getpid()
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid == me:
            continue
        try:
            environ = (entry / "environ").read_bytes() + b"\0"
        except OSError:
            continue
        if b"\0" + needle in b"\0" + environ:
            found[pid] = process_start_token(pid)
    return found


def reap(processes: dict[int, str | None]) -> list[int]:
    """SIGTERM, then SIGKILL what is still there (the same processes, by start token);
    returns the pids that had to be signalled."""
    signalled: set[int] = set()
    for signum, wait in ((signal.SIGTERM, TERM_S), (signal.SIGKILL, 0.0)):
        alive = [pid for pid, token in processes.items() if process_alive(pid, token)]
        signalled.update(alive)
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [pid for pid in alive if process_alive(pid, processes[pid])]
    return sorted(signalled)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or ":" not in args[0]:
        print(
            "usage: python -m nbtrain.dispatch.ray_reaper KERNEL_PID:START_TOKEN", file=sys.stderr
        )
        return 2
    marker = args[0]
    with contextlib.suppress(OSError):
        while os.read(0, 4096):
            pass
    _say(f"kernel {marker.split(':')[0]} ended")
    time.sleep(GRACE_S)
    reaped = reap(marked(marker))
    _say(f"ended {reaped}" if reaped else "nothing left to end")
    return 0


def _say(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} nbtrain ray_reaper: {message}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
