"""``nbtrain runs``, ``summary``, ``export`` and ``migrate``: reading a database."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrain.cli.common import (
    UsageError,
    add_db,
    open_store,
    print_frame,
    report_failures,
    run_id_arg,
)

if TYPE_CHECKING:
    from rich.console import Console

    from nbtrain.store import TelemetryStore


def add_parsers(sub: Any) -> None:
    runs = sub.add_parser("runs", help="list the runs in a database")
    add_db(runs)

    summary = sub.add_parser("summary", help="one row per worker of a run")
    summary.add_argument("run_id", help="the run's ULID (see nbtrain runs)")
    add_db(summary)

    export = sub.add_parser("export", help="write a run's episodes and steps to files")
    export.add_argument("run_id", help="the run's ULID (see nbtrain runs)")
    export.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    export.add_argument("--out", default=".", help="folder for the files (default: .)")
    export.add_argument("--force", action="store_true", help="overwrite existing files")
    add_db(export)

    migrate = sub.add_parser("migrate", help="upgrade a database to the current schema")
    migrate.add_argument("db")


def _cmd_runs(args: argparse.Namespace, console: Console) -> int:
    store = open_store(args.db)
    runs = store.runs()
    shown = [c for c in ("run_id", "name", "created_at", "status", "digest") if c in runs]
    runs = runs[shown].assign(digest=runs["digest"].str[:12]) if "digest" in shown else runs
    print_frame(console, runs, f"runs in {args.db}")
    return 0


def _cmd_summary(args: argparse.Namespace, console: Console) -> int:
    run_id = run_id_arg(args.run_id)
    store = open_store(args.db)
    print_frame(console, store.run_summary(run_id), f"run {run_id}")
    return report_failures(store.workers(run_id))


def _cmd_export(args: argparse.Namespace, console: Console) -> int:
    run_id = run_id_arg(args.run_id)  # a ULID: the file names below cannot leave --out
    store = open_store(args.db)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a folder (made if missing)")
    paths = {table: out / f"{run_id}-{table}.{args.format}" for table in ("episodes", "steps")}
    existing = [str(p) for p in paths.values() if p.exists() or p.is_symlink()]
    if existing and not args.force:
        raise UsageError(f"{', '.join(existing)} already exist(s); pass --force to overwrite")
    frames, unfinished = _finished_frames(store, run_id)
    _write_all_or_nothing(frames, paths, args.format)
    for table, made in paths.items():
        console.print(f"{table}: {len(frames[table])} rows → {made}")
    if unfinished:
        console.print(f"({unfinished} steps of episodes still being played were left out)")
    return 0


def _write_all_or_nothing(frames: dict[str, Any], paths: dict[str, Path], fmt: str) -> None:
    """Write each frame to a temporary file beside its target, then rename them all: a
    failure (a full disk, no permission) leaves no partial export and, with --force, the
    previous export as it was. A symlink at a target is replaced, never followed."""
    out = next(iter(paths.values())).parent
    temps: dict[str, Path] = {}
    path = out
    try:
        out.mkdir(parents=True, exist_ok=True)
        for table, path in paths.items():  # path: the file being written, if one fails
            temps[table] = temp = path.with_name(f".{path.name}.{os.getpid()}.partial")
            if fmt == "parquet":
                frames[table].to_parquet(temp, index=False)
            else:
                frames[table].to_csv(temp, index=False)
        for table, path in paths.items():
            os.replace(temps.pop(table), path)
    except OSError as exc:  # a file in the way, no permission, a full disk
        raise UsageError(f"cannot write the export to {path}: {exc.strerror or exc}") from exc
    finally:
        for temp in temps.values():
            with contextlib.suppress(OSError):
                temp.unlink()


def _finished_frames(store: TelemetryStore, run_id: str) -> tuple[dict[str, Any], int]:
    """The run's episodes and the steps of those episodes, read in one transaction: a run
    still going has steps of unfinished episodes, which an export must not pair with
    nothing. Returns the frames and how many steps were left out."""
    import pandas as pd

    with store.snapshot() as snap:
        episodes, steps = snap.episodes(run_id), snap.steps(run_id)
    keys = ["worker_id", "ep_index"]
    finished = pd.MultiIndex.from_frame(episodes[keys].astype({"worker_id": str}))
    keep = pd.MultiIndex.from_frame(steps[keys].astype({"worker_id": str})).isin(finished)
    left_out = int((~keep).sum())
    if left_out:
        steps = steps[keep].reset_index(drop=True)
        steps["worker_id"] = steps["worker_id"].cat.remove_unused_categories()
    return {"episodes": episodes, "steps": steps}, left_out


def _cmd_migrate(args: argparse.Namespace, console: Console) -> int:
    from nbtrain.store import migrate

    if not Path(args.db).is_file():
        raise UsageError(f"no database file at {args.db}")
    before, after = migrate(args.db)
    if before == after:
        console.print(f"{args.db}: already at schema version {after}; nothing to do")
        return 0
    was = "a new database" if before is None else f"schema version {before}"
    console.print(f"{args.db}: {was} → schema version {after}")
    return 0


COMMANDS = {
    "runs": _cmd_runs,
    "summary": _cmd_summary,
    "export": _cmd_export,
    "migrate": _cmd_migrate,
}
