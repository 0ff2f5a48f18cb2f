"""``nbtrain rm``, ``nbtrain archive`` and ``nbtrain du``: managing the runs of a database.

Exit codes as for the other commands: 0 done, 2 bad input, an unknown run or a refused
operation (one line on stderr), and for ``rm`` 1 when the question was answered no (or
stdin was closed): nothing was deleted, which a script must be able to tell from success.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrain.cli.common import add_db, open_store, print_frame, run_id_arg

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from nbtrain.store import TelemetryStore

Command = Callable[[argparse.Namespace, "Console"], int]


def add_parsers(sub: Any) -> None:
    """Register the three sub-commands on the ``nbtrain`` parser."""
    rm = sub.add_parser("rm", help="delete a run: its rows in every table and its run folder")
    rm.add_argument("run_id", help="the run's ULID (see nbtrain runs)")
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask first")
    add_db(rm)

    archive = sub.add_parser(
        "archive", help="move a run into another nbtrain database (its folder goes beside it)"
    )
    archive.add_argument("run_id", help="the run's ULID (see nbtrain runs)")
    archive.add_argument("--to", required=True, metavar="FILE", help="the archive database")
    add_db(archive)

    du = sub.add_parser("du", help="disk usage per run and per worker, largest first")
    add_db(du)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def worker_summary(store: TelemetryStore, run_id: str) -> pd.DataFrame:
    """What a person confirms before a run goes: one row per worker."""
    summary = store.run_summary(run_id)
    return summary[["worker_id", "status", "exit_code", "episodes", "steps", "mean_return"]]


def _print_frame(console: Console, frame: pd.DataFrame, title: str) -> None:
    show = print_frame

    show(console, frame, title)


def _ask(question: str) -> bool:
    print(question, end=" ", flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        answer = ""
    if not answer.endswith("\n"):
        print()  # stdin closed: end the question's line
    return answer.strip().lower() in ("y", "yes")


def cmd_rm(args: argparse.Namespace, console: Console) -> int:
    from nbtrain.store.retention import check_not_live

    args.run_id = run_id_arg(args.run_id)
    store = open_store(args.db)
    summary = worker_summary(store, args.run_id)  # an unknown run stops here (exit 2)
    check_not_live(store, args.run_id)  # refused before asking, not after
    if not args.yes:
        _print_frame(console, summary, f"run {args.run_id} in {args.db}")
        episodes, steps = int(summary["episodes"].sum()), int(summary["steps"].sum())
        question = (
            f"Delete run {args.run_id} ({len(summary)} workers, {episodes} episodes, "
            f"{steps} steps) and its run folder? [y/N]"
        )
        if not _ask(question):
            console.print("nothing deleted")
            return 1
    counts = store.delete_run(args.run_id)
    console.print(f"deleted run {args.run_id}: {_rows(counts)}")
    _warn_leftover(store.path, args.run_id, "rm")
    return 0


def _warn_leftover(db: Path, run_id: str, command: str) -> None:
    """The rows are gone (exit 0), but say which part of the run folder is still on disk."""
    from nbtrain.store.runfolder import leftover

    left = leftover(db, run_id)
    if left is not None:
        print(
            f"nbtrain {command}: warning: could not remove {left} (see the log); delete it by hand",
            file=sys.stderr,
        )


def cmd_archive(args: argparse.Namespace, console: Console) -> int:
    args.run_id = run_id_arg(args.run_id)
    store = open_store(args.db)
    counts = store.archive_run(args.run_id, to=args.to)
    console.print(f"archived run {args.run_id} to {args.to}: {_rows(counts)}")
    _warn_leftover(store.path, args.run_id, "archive")
    return 0


def cmd_du(args: argparse.Namespace, console: Console) -> int:
    import pandas as pd

    from nbtrain.store.retention import file_bytes, free_bytes

    store = open_store(args.db)
    usage = store.disk_usage()
    runs = store.runs()[["run_id", "name"]]
    per_run = (
        usage.groupby("run_id", sort=False)
        .agg(workers=("worker_id", "size"), episodes=("episodes", "sum"),
             steps=("steps", "sum"), bytes=("bytes", "sum"))
        .reset_index()
        .merge(runs, on="run_id", how="left")
        .sort_values(["bytes", "run_id"], ascending=[False, True])
    )  # fmt: skip
    per_run = per_run[["run_id", "name", "workers", "episodes", "steps", "bytes"]]
    _print_frame(console, _readable(per_run), f"runs in {args.db} (largest first)")
    per_worker = pd.DataFrame(usage).astype({"worker_id": str})
    _print_frame(console, _readable(per_worker), "per worker (largest first)")
    path = Path(args.db)
    console.print(
        f"file {human_bytes(file_bytes(path))}, of which {human_bytes(free_bytes(path))} free "
        f"(reusable; TelemetryStore(db).vacuum() returns it to the file system)"
    )
    return 0


def _readable(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["bytes"] = [human_bytes(int(b)) for b in out["bytes"]]
    return out


def _rows(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {table}" for table, n in counts.items())


COMMANDS: dict[str, Command] = {"rm": cmd_rm, "archive": cmd_archive, "du": cmd_du}

__all__ = ["COMMANDS", "add_parsers", "human_bytes", "worker_summary"]
