"""A child "kernel" process that launches a run (``kernel_proc.py``), and plain-sqlite checks."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
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


def worker_pids(db: Path, run_id: str) -> list[int]:
    return [
        int(r[0])
        for r in rows(db, "SELECT pid FROM workers WHERE run_id = ? AND pid IS NOT NULL", (run_id,))
    ]
