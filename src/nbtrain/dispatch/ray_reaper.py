"""Ends what a kernel's own local Ray instance left behind when the kernel dies hard.

Ray fate-shares its head processes (GCS, raylet…) with the driver that started them, but
not everything under them: after a ``SIGKILL`` of the driver, Ray 2.60's dashboard and
runtime-env agents and the actors' worker processes were seen running (the agents spinning
a CPU) for a minute or more. So a kernel that starts a local instance also starts this
small watcher, ``python -m nbtrain.dispatch.ray_reaper MARKER``, with a pipe on its stdin.

Which processes are the instance's: those started while ``ray.init`` ran inherit
``NBTRAIN_RAY_OWNER=<kernel pid>:<its start token>`` (set only then; nothing else the
notebook starts carries it). Ray renames its agents and workers (``ray::…``), which
overwrites their environment block, so the watcher also notes, every second while the
kernel lives, everything under the kernel's marked children. At EOF (the kernel is gone,
however it ended) it ends what it noted that is still alive; after a normal exit
``ray.shutdown()`` has already ended it all and it finds nothing to do.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from nbtrain.procinfo import process_alive, process_start_token

OWNER_ENV = "NBTRAIN_RAY_OWNER"
#: After EOF, Ray's own fate-sharing gets this long before the reaper steps in.
GRACE_S = 1.0
#: How long a kernel waits for the watcher's first note of the instance's processes.
REAPER_READY_S = 30.0
SNAPSHOT_S = 1.0
TERM_S = 2.0


def owner_marker(pid: int) -> str:
    return f"{pid}:{process_start_token(pid)}"


def _carries(pid: int, needle: bytes) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return needle in b"\0" + environ + b"\0"


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1:
            parents[int(stat.parent.name)] = int(fields[1])
    return parents


def instance_processes(kernel: int, marker: str) -> dict[int, str | None]:
    """The live processes of the kernel's Ray instance, each with its start token: those
    whose environment still carries ``marker``, and all under the kernel's marked children."""
    needle = b"\0" + f"{OWNER_ENV}={marker}".encode() + b"\0"
    parents = _parents()
    found = {pid for pid in parents if _carries(pid, needle)}
    frontier = {pid for pid in found if parents[pid] == kernel}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    found.discard(os.getpid())
    return {pid: process_start_token(pid) for pid in found}


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


#: The watcher of this kernel's own local Ray instance (see :mod:`.ray_reaper`); its stdin
#: pipe closes when the kernel ends, however it ends.
_REAPER: subprocess.Popen[bytes] | None = None


def start_reaper(marker: str, temp_dir: str) -> None:
    """Start the watcher and wait (briefly) until it has noted the instance's processes."""
    global _REAPER
    if _REAPER is not None and _REAPER.poll() is None:
        return
    command = [sys.executable, "-m", "nbtrain.dispatch.ray_reaper", marker]
    with open(Path(temp_dir) / "nbtrain-reaper.log", "ab") as log_file:
        reaper = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
            start_new_session=True,  # Jupyter's interrupt of the kernel's group spares it
        )
    assert reaper.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(reaper.stdout, selectors.EVENT_READ)
        if selector.select(timeout=REAPER_READY_S):
            reaper.stdout.readline()
    reaper.stdout.close()
    _REAPER = reaper


def stop_reaper() -> None:
    global _REAPER
    reaper, _REAPER = _REAPER, None
    if reaper is not None and reaper.stdin is not None:
        reaper.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            reaper.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or ":" not in args[0]:
        print(
            "usage: python -m nbtrain.dispatch.ray_reaper KERNEL_PID:START_TOKEN", file=sys.stderr
        )
        return 2
    marker = args[0]
    kernel = int(marker.split(":")[0]) if marker.split(":")[0].isdigit() else -1
    gone = threading.Event()

    def watch_stdin() -> None:
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        gone.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    seen = instance_processes(kernel, marker)
    # The kernel waits for this line: nothing it started before is missed.
    os.write(1, b"ready\n")
    os.close(1)
    while not gone.wait(SNAPSHOT_S):
        seen.update(instance_processes(kernel, marker))
        seen = {pid: token for pid, token in seen.items() if process_alive(pid, token)}
    seen.update(instance_processes(kernel, marker))
    _say(f"kernel {kernel} ended")
    time.sleep(GRACE_S)
    reaped = reap(seen)
    _say(f"ended {reaped}" if reaped else "nothing left to end")
    return 0


def _say(message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} nbtrain ray_reaper: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
