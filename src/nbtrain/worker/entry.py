"""The worker process: parse the command line, choose where events go, run the worker.

``python -m nbtrain.worker`` calls :func:`main`; the training itself is
:class:`nbtrain.worker.runtime.Worker`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from nbtrain.worker.cli import PROG, Launch, UsageError, parse_launch
from nbtrain.worker.runtime import Worker
from nbtrain.worker.sinks import FrameSink, JsonLinesSink, Sink, SummarySink

# Debug aid for tests: write the names of all imported modules to this file at exit.
MODULES_DUMP_ENV = "NBTRAIN_WORKER_DUMP_MODULES"


def _make_sink(launch: Launch) -> Sink:
    if launch.telemetry_fd is not None:
        return FrameSink(launch.telemetry_fd)
    if launch.jsonl:
        # Events keep the real stdout; anything the agent prints goes to stderr instead.
        events_fd = os.dup(1)
        sys.stdout.flush()
        os.dup2(2, 1)
        return JsonLinesSink(events_fd)
    return SummarySink()


def _dump_modules() -> None:
    target = os.environ.get(MODULES_DUMP_ENV)
    if target:
        Path(target).write_text("\n".join(sorted(sys.modules)))


def _make_out_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot make --out folder {str(out)!r}: {exc.strerror or exc}") from None
    print(f"{PROG}: policy files go to {out}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    try:
        launch = parse_launch(argv)
        if launch.out_dir is not None:
            _make_out_dir(launch.out_dir)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    code = Worker(launch, _make_sink(launch)).run()
    _dump_modules()
    return code
