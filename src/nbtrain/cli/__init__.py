"""``nbtrain`` on the command line.

Sub-commands: ``run``, ``demo``, ``stop`` (:mod:`.training`); ``runs``, ``summary``,
``export``, ``migrate`` (:mod:`.reading`); ``rm``, ``archive``, ``du`` (:mod:`.manage`).

Exit codes: 0 success, 1 a run ended with a failed worker (or ``rm`` was answered no), 2 bad
input (one line naming it), 130 interrupted (the workers are stopped first).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nbtrain.cli import manage, reading, training
from nbtrain.cli.common import UsageError, one_line
from nbtrain.errors import NbtrainError

COMMANDS = {**training.COMMANDS, **reading.COMMANDS, **manage.COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbtrain", description="Run and study RL experiments (multi-worker, SQLite)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    training.add_parsers(sub)
    reading.add_parsers(sub)
    manage.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError
    from rich.console import Console

    args = build_parser().parse_args(argv)
    # Not a terminal (a pipe, CI): wide enough that run ids are never cut. Markup and emoji
    # codes off: run names, paths and errors are user text, printed as typed ("[final]"
    # stays, "oops [/] x" cannot crash a table).
    width = None if sys.stdout.isatty() else 200
    console = Console(highlight=False, markup=False, emoji=False, width=width)
    try:
        return COMMANDS[args.command](args, console)
    except ValidationError as exc:
        print(f"nbtrain {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except (UsageError, NbtrainError, FileNotFoundError, IsADirectoryError) as exc:
        print(f"nbtrain {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nbtrain: interrupted; workers stopped", file=sys.stderr)
        return 130


__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]
