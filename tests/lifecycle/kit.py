"""Helpers of the lifecycle tests: a child "kernel" process and plain-sqlite checks."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

KERNEL = str(Path(__file__).with_name("kernel_proc.py"))


class Kernel:
    """A child process standing in for the notebook kernel that owns a run."""

    def __init__(
        self,
        db: Path,
        episodes: int,
        workers: int,
        delay: float,
        nofile: int = 0,
        env: dict[str, str] | None = None,
    ) -> None:
        args = [sys.executable, KERNEL, str(db), str(episodes), str(workers), str(delay)]
        if nofile:
            args.append(str(nofile))
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=db.parent,
            env={**os.environ, **(env or {})},
        )
        assert self.proc.stdout is not None
        self.first = self.proc.stdout.readline().split(maxsplit=2)
        if not self.first:
            self.proc.wait(10)
            raise AssertionError(f"kernel said nothing; stderr: {self.proc.stderr.read()}")  # type: ignore[union-attr]

    @property
    def run_id(self) -> str:
        assert self.first[0] == "RUN", self.first
        return self.first[1]

    def rest(self, timeout: float = 30) -> str:
        out, _ = self.proc.communicate(timeout=timeout)
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def rows(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def episodes_have_all_steps(db: Path) -> list[tuple[object, ...]]:
    """Stored episodes whose steps are not all stored (empty when the store is honest)."""
    return rows(
        db,
        "SELECT e.run_id, e.worker_id, e.ep_index, e.length, COALESCE(SUM(c.n_steps), 0) "
        "FROM episodes e LEFT JOIN step_chunks c ON c.run_id = e.run_id "
        "AND c.worker_id = e.worker_id AND c.ep_index = e.ep_index "
        "GROUP BY e.run_id, e.worker_id, e.ep_index HAVING COALESCE(SUM(c.n_steps), 0) != e.length",
    )


def worker_pids(db: Path, run_id: str) -> list[int]:
    return [
        int(r[0])
        for r in rows(db, "SELECT pid FROM workers WHERE run_id = ? AND pid IS NOT NULL", (run_id,))
    ]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
