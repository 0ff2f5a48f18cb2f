"""A run's folder (``nbtrain-runs/{run_id}/`` beside its database) for delete and archive.

Only a ULID run id ever names a folder: any other id (a legacy run, a hand-written row) has
none, so no path is ever built from it. Symbolic links are moved or unlinked, never followed.
Removing is done in two steps, a rename to a hidden name inside the same folder (atomic, and
undone if the database transaction fails) and the removal itself after the commit.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from nbtrain.ids import is_run_id
from nbtrain.log_codes import LOG_SERVICE_RUN_DELETED
from nbtrain.logs import log

RUNS_FOLDER = "nbtrain-runs"


def run_folder(db_path: Path, run_id: str) -> Path | None:
    """The run's folder beside ``db_path``, or None when ``run_id`` is not a ULID."""
    if not is_run_id(run_id):
        return None
    return db_path.parent / RUNS_FOLDER / run_id


def exists(folder: Path | None) -> bool:
    return folder is not None and (folder.is_symlink() or folder.exists())


def folder_bytes(folder: Path | None) -> int:
    """Bytes of the regular files under ``folder`` (links not followed); 0 when absent."""
    if folder is None or folder.is_symlink() or not folder.is_dir():
        return 0
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def stash(folder: Path | None) -> Path | None:
    """Rename ``folder`` out of the way (same parent, so atomic); None if there is none."""
    if not exists(folder):
        return None
    assert folder is not None
    hidden = _hidden(folder)
    if exists(hidden):
        remove(hidden)
    folder.rename(hidden)
    return hidden


def leftover(db_path: Path, run_id: str) -> Path | None:
    """The hidden remains of a deleted run's folder that could not be removed (the failure
    was logged), or None: callers tell the user which folder to delete by hand."""
    folder = run_folder(db_path, run_id)
    if folder is None:
        return None
    hidden = _hidden(folder)
    return hidden if exists(hidden) else None


def _hidden(folder: Path) -> Path:
    """Where a folder being removed waits, renamed, for the commit (see :func:`stash`)."""
    return folder.with_name(f".removing-{folder.name}")


def unstash(hidden: Path | None, folder: Path | None) -> None:
    if hidden is not None and folder is not None:
        hidden.rename(folder)


def remove(path: Path | None, run_id: str = "") -> None:
    """Remove a folder (or a link) for good; a failure is logged, never raised (the rows are
    already gone, so the run is deleted either way)."""
    if path is None:
        return
    try:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
    except OSError as err:
        log(
            logging.WARNING,
            LOG_SERVICE_RUN_DELETED,
            "could not remove %s: %s",
            path,
            err,
            run_id=run_id or None,
        )


def copy_to(folder: Path | None, target: Path) -> Path | None:
    """Copy ``folder`` to ``target`` through a hidden partial copy renamed at the end, so
    ``target`` exists only complete. Returns ``target``, or None when there is nothing to copy.
    A partial copy is removed when the copy fails."""
    if not exists(folder):
        return None
    assert folder is not None
    if exists(target):
        raise FileExistsError(f"{target} already exists; it would be overwritten")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = target.with_name(f".partial-{target.name}")
    remove(partial)
    try:
        if folder.is_symlink():
            partial.symlink_to(os.readlink(folder))
        else:
            shutil.copytree(folder, partial, symlinks=True)
        partial.rename(target)
    except BaseException:
        remove(partial)
        raise
    return target
