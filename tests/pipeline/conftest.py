from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HELPERS = str(Path(__file__).resolve().parents[1] / "helpers")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh database in a fresh working directory; workers can import tests/helpers."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(HELPERS)
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", HELPERS + (os.pathsep + old if old else ""))
    return tmp_path / "nbtrain.sqlite"


def pid_alive(pid: int) -> bool:
    """Ask the OS, not our Popen objects: a zombie counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)
