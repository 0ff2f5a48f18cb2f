"""What every ``nbtrain`` sub-command shares: the usage error, one-line messages, tables."""

from __future__ import annotations

import argparse
import math
import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from nbtrain.store import TelemetryStore


class UsageError(Exception):
    """Bad input on the command line: exit code 2 with one clear line."""


def one_line(exc: BaseException) -> str:
    """The error as one line: a pydantic error lists each problem as ``field: message``;
    notes (``while loading config file run.toml``) follow in parentheses."""
    text = ""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            text = "; ".join(_problem(e) for e in errors())
        except Exception:
            text = ""
    text = text or " ".join(str(exc).split()) or type(exc).__name__
    notes = [" ".join(str(n).split()) for n in getattr(exc, "__notes__", ())]
    return f"{text} ({'; '.join(notes)})" if notes else text


def _problem(error: Any) -> str:
    """``field: message`` without pydantic's "Value error, " and without the field twice."""
    field = ".".join(str(p) for p in error.get("loc", ())) or "config"
    message = " ".join(str(error.get("msg", "")).split()).removeprefix("Value error, ")
    named = re.match(rf"{re.escape(field)}\b", message) is not None
    return message if named else f"{field}: {message}"


def run_id_arg(text: str) -> str:
    """The run id typed on the command line: ULIDs are case-insensitive (Crockford base32),
    so ``01m8…`` names the same run as ``01M8…``; anything else is refused naming it."""
    from nbtrain.ids import check_run_id, is_run_id

    return check_run_id(text.upper() if is_run_id(text.upper()) else text)


def seconds(text: str) -> float:
    """An argparse ``type``: a finite number of seconds >= 0 (else exit 2 naming it)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds >= 0")
    return value


def add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default="nbtrain.sqlite", help="SQLite file (default: %(default)s)")


def print_frame(console: Console, frame: pd.DataFrame, title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[cell(v) for v in row])
    console.print(table)


def report_failures(workers: pd.DataFrame) -> int:
    """One stderr line per failed worker with its recorded reason (a table shows no
    reasons); returns the exit code: 1 if any worker failed, else 0."""
    failed = workers[workers["status"] == "failed"]
    for row in failed.itertuples(index=False):
        error = row.error if isinstance(row.error, str) and row.error else "no reason recorded"
        print(f"worker {row.worker_id} failed: {' '.join(error.split())}", file=sys.stderr)
    return 1 if len(failed) else 0


def cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"
    return "" if value is None else str(value)


def open_store(db: str) -> TelemetryStore:
    """The store at ``db``, which must exist (the CLI never creates a database to read it)."""
    from nbtrain.store import TelemetryStore
    from nbtrain.store.files import existing_db

    return TelemetryStore(existing_db(db))
