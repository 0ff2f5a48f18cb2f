"""A store writer on a fresh file; real file-system faults for the retention tests:
read-only folders and full disks.

As root, permissions do not stop writes, so read-only means a read-only bind mount and full
means a small tmpfs; without root, read-only is ``chmod 0500`` and a full disk is made with
``RLIMIT_FSIZE`` in a child process (tests/store/test_retention_faults.py).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbtrain.store.writer import StoreWriter, acquire_writer

ROOT = os.geteuid() == 0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A database path (a test module may override it)."""
    return tmp_path / "store.sqlite"


@pytest.fixture
def writer(db: Path) -> Iterator[StoreWriter]:
    """The process's writer for ``db``, released after the test."""
    w = acquire_writer(db)
    yield w
    w.release()


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} failed: {result.stderr.strip()}")


@pytest.fixture
def ro_remount() -> Iterator[Callable[[Path], Path]]:
    """``ro_remount(folder)``: make an existing folder read-only, contents kept."""
    undo: list[Callable[[], object]] = []

    def make(path: Path) -> Path:
        if ROOT:
            _mount("--bind", str(path), str(path))
            undo.append(lambda: subprocess.run(["umount", "-l", str(path)], check=False))
            _mount("-o", "remount,bind,ro", str(path))
        else:
            path.chmod(0o500)
            undo.append(lambda: path.chmod(0o700))
        return path

    yield make
    for step in reversed(undo):
        step()


@pytest.fixture
def readonly_dir(ro_remount: Callable[[Path], Path]) -> Callable[[Path], Path]:
    """``readonly_dir(path)``: a new, empty folder nothing can be written into."""

    def make(path: Path) -> Path:
        path.mkdir()
        return ro_remount(path)

    return make


@pytest.fixture
def small_fs() -> Iterator[Callable[[Path, int], Path]]:
    """``small_fs(path, bytes)``: a new folder on a file system of that size (root only)."""
    mounted: list[Path] = []

    def make(path: Path, size: int) -> Path:
        if not ROOT:
            pytest.skip("a small tmpfs needs root; the RLIMIT_FSIZE tests cover this case")
        path.mkdir()
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
        mounted.append(path)
        return path

    yield make
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)
