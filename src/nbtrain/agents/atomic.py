"""Write a file so that a reader (or a crash) never sees half of it.

The bytes go to a temp file created ``0600`` in the target's own folder (``os.replace`` is
atomic only within one file system), are fsynced, and replace the target in one step; the
folder is fsynced so the rename survives a power cut. Every failure removes the temp file:
a full disk must not leave ``.policy-….tmp`` litter behind.

Inside :func:`without_fsync` the fsyncs are skipped: the rename alone already protects
against a crashed *process* (the page cache outlives it), which is what periodic training
checkpoints guard against; four fsyncs each made them cost ~0.85 ms, several seconds over a
run of short episodes. The final save of a worker stays durable.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

__all__ = [
    "FILE_MODE",
    "replace_atomically",
    "saving_into",
    "temp_path",
    "without_fsync",
    "write_atomic",
]

FILE_MODE = 0o600  # policies may carry a pickled notebook agent's globals: owner only
_DURABLE: ContextVar[bool] = ContextVar("nbtrain_durable_writes", default=True)
# Set while an agent saves into a private temp file that the caller renames atomically:
# the agent's own write_atomic then writes straight into it (one temp file, not two).
_INTO_TEMP: ContextVar[Path | None] = ContextVar("nbtrain_into_temp", default=None)


@contextlib.contextmanager
def saving_into(tmp: Path) -> Iterator[None]:
    """``write_atomic(tmp, …)`` in this block writes ``tmp`` directly (it is already a
    private temp file that the caller replaces the target with)."""
    token = _INTO_TEMP.set(tmp)
    try:
        yield
    finally:
        _INTO_TEMP.reset(token)


@contextlib.contextmanager
def without_fsync() -> Iterator[None]:
    """Atomic writes in this block skip fsync (safe against a process crash, not a power cut)."""
    token = _DURABLE.set(False)
    try:
        yield
    finally:
        _DURABLE.reset(token)


def temp_path(target: Path) -> Path:
    """A new, empty ``0600`` file beside ``target`` (exclusively created, unique name)."""
    for attempt in range(100):
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{attempt}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"cannot create a temp file beside {str(target)!r}: 100 names taken")


def _fsync_dir(folder: Path) -> None:
    if not _DURABLE.get():
        return
    with contextlib.suppress(OSError):  # some file systems cannot fsync a directory
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def replace_atomically(tmp: Path, target: Path) -> None:
    """fsync ``tmp``, make it ``0600``, rename it over ``target``; ``tmp`` is gone afterwards
    whether this succeeds or raises."""
    try:
        if _DURABLE.get():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring)."""
    target = Path(path)
    direct = _INTO_TEMP.get() == target
    tmp = target if direct else temp_path(target)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, FILE_MODE)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if not direct:
        replace_atomically(tmp, target)
