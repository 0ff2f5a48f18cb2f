"""Which process is which: pids with their start time, so a reused pid is never trusted.

Used by the kernel (its own identity as a run's owner, its workers') and by any reader that
must decide whether the process a row names is still there.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    return stat.rsplit(")", 1)[1].split()


def process_start_token(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc/PID/stat`` field 22), or
    None where /proc is not there. With the pid it names one process for the machine's life."""
    fields = _stat_fields(pid)
    # fields[0] is field 3 (the state), so field 22 is fields[19].
    return fields[19] if fields is not None and len(fields) > 19 else None


def process_alive(pid: int | None, start_token: str | None) -> bool:
    """Is the process that had ``pid`` (and ``start_token``, when known) still running?
    A zombie counts as gone."""
    if pid is None or pid <= 0:
        return False
    fields = _stat_fields(pid)
    if fields is None:
        if Path("/proc/self/stat").exists():
            return False  # /proc works, and has no such pid
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if fields and fields[0] in ("Z", "X"):
        return False
    return start_token is None or (len(fields) > 19 and fields[19] == start_token)


def this_host() -> str:
    return socket.gethostname()


def own_identity() -> tuple[int, str | None, str]:
    """This process as a run's owner: pid, start-time token, host."""
    pid = os.getpid()
    return pid, process_start_token(pid), this_host()
