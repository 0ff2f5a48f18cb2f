"""``nbtrain`` on the command line.

Sub-commands: ``run``, ``demo``, ``stop`` (:mod:`.training`); ``runs``, ``summary``,
``export``, ``migrate`` (:mod:`.reading`); ``rm``, ``archive``, ``du`` (:mod:`.manage`).

Exit codes: 0 success, 1 a run ended with a failed worker (or ``rm`` was answered no), 2 bad
input (one line naming it), 130 interrupted; 143 and 129 for SIGTERM and SIGHUP, which stop
the workers the way Ctrl-C does (the run ends ``stopped``, not ``failed``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from nbtrain.cli import manage, reading, signals, training
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
        with signals.handled() as termination:
            args.termination = termination
            code = COMMANDS[args.command](args, console)
        if termination.signum is not None:  # the run was stopped, as asked
            name = signal.Signals(termination.signum).name
            print(f"nbtrain {args.command}: {name}; workers stopped", file=sys.stderr)
            return 128 + termination.signum
        return code
    except ValidationError as exc:
        print(f"nbtrain {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except (UsageError, NbtrainError, FileNotFoundError, IsADirectoryError) as exc:
        print(f"nbtrain {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, signals.Terminated) else signal.SIGINT
        how = "interrupted" if signum == signal.SIGINT else f"{signal.Signals(signum).name}"
        stopped = "; workers stopped" if args.command in ("run", "demo") else ""
        print(f"nbtrain {args.command}: {how}{stopped}", file=sys.stderr)
        return 128 + signum


def script() -> None:
    """The ``nbtrain`` console script. Its ``sys.path`` starts at the script's folder, not
    the current one: put the current folder first, as ``python -m nbtrain.cli`` does, so
    ``--agent mymodule:make`` finds the ``mymodule.py`` next to the user."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    sys.exit(main())


__all__ = ["COMMANDS", "UsageError", "build_parser", "main", "script"]
