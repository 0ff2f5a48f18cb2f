"""The run folder: where it is, and the files the dispatcher writes into it.

The folder is output, never input: the worker files record what each worker ran, but a
restart rebuilds the config from the database and rewrites them. Folders are created ``0700``
and files ``0600`` from the first byte (a pickled notebook agent carries the globals it
references), written to a temporary name and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec

from nbtrain.errors import RunError
from nbtrain.ids import is_run_id
from nbtrain.store.runfolder import RUNS_FOLDER
from nbtrain.worker.config_file import WorkerConfig

DIR_MODE = 0o700
FILE_MODE = 0o600


def run_dir_for(db_path: Path, run_id: str) -> Path:
    """``nbtrain-runs/{run_id}`` beside the database; only a ULID may name it."""
    if not is_run_id(run_id):
        raise RunError(f"{run_id!r} is not a run id (a 26-character ULID); it names no folder")
    return db_path.parent / RUNS_FOLDER / run_id


def worker_config_path(run_dir: Path, run_id: str, worker_id: str) -> Path:
    return run_dir / f"worker-{run_id}-{worker_id}.json"


def check_runs_root(db_path: Path) -> None:
    """Refuse a launch whose run folder could not be made, before any row is recorded: a
    file named ``nbtrain-runs`` beside the database would fail every launch halfway."""
    root = db_path.parent / RUNS_FOLDER
    if (root.exists() or root.is_symlink()) and not root.is_dir():
        raise RunError(
            f"{root} is not a folder, but nbtrain keeps its run folders there: move it away, "
            "or put the database in another folder"
        )


def make_run_dir(run_dir: Path) -> None:
    """Create the run folder ``0700`` (its parent ``nbtrain-runs`` too, if new)."""
    run_dir.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        run_dir.mkdir(mode=DIR_MODE)
    os.chmod(run_dir, DIR_MODE)  # mkdir's mode is masked by the umask


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode ``0600``; no temporary file remains."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    try:
        try:
            os.fchmod(fd, FILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_worker_config(config: WorkerConfig, path: Path) -> None:
    write_private(path, msgspec.json.format(msgspec.json.encode(config), indent=2))
