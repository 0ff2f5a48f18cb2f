"""The worker's command line: ``python -m nbtrain.worker --config FILE --worker-id ID
[--jsonl] [--out DIR]``.

Anything wrong with the command line, the config file, the worker id or the pipe file
descriptors is exit code 2 with one line on stderr, before any telemetry is written.

Run by hand (no telemetry pipe) on a config a dispatcher wrote, the worker reads the
recorded run's folder (a checkpoint to resume, the policy to evaluate) but writes its own
policy to ``./nbtrain-hand/{run_id}/`` (or ``--out``): the recorded run's files keep
matching what its database says.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import msgspec

from nbtrain.errors import InvalidWorkerIdError
from nbtrain.ids import is_run_id, normalize_worker_id
from nbtrain.worker.config_file import FORMAT_VERSION, WorkerConfig, load_worker_config

# The environment a dispatcher (local or Ray) sets for the worker: the one home of these names.
TELEMETRY_FD_ENV = "NBTRAIN_TELEMETRY_FD"
CONTROL_FD_ENV = "NBTRAIN_CONTROL_FD"
WORKER_ID_ENV = "WORKER_ID"
PROG = "nbtrain.worker"


class UsageError(Exception):
    """Bad command line, config file, worker id or fd: exit code 2, one line on stderr."""


@dataclass(frozen=True)
class Launch:
    config: WorkerConfig
    config_path: Path
    worker_id: str
    telemetry_fd: int | None
    control_fd: int | None
    jsonl: bool
    out_dir: Path | None = None  # where policy files are written; None: run_dir

    @property
    def run_dir(self) -> Path:
        """The run's folder: where its policy files are read from."""
        if self.config.run_dir:
            return Path(self.config.run_dir)
        return self.config_path.parent

    @property
    def policy_dir(self) -> Path:
        """Where this worker writes its policy files."""
        return self.out_dir or self.run_dir


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=f"python -m {PROG}", description="Run one nbtrain worker.")
    parser.add_argument("--config", required=True, help="the worker's JSON config file")
    parser.add_argument(
        "--worker-id", help="must match the config file (and WORKER_ID when that is set)"
    )
    parser.add_argument("--jsonl", action="store_true", help="print events as JSON lines on stdout")
    parser.add_argument(
        "--out",
        help="folder for the policy files (default: the run's folder; run by hand on a "
        "dispatcher's config: ./nbtrain-hand/RUN_ID, never the recorded run's folder)",
    )
    return parser


def _normalized(value: str, source: str) -> str:
    try:
        return normalize_worker_id(value)
    except InvalidWorkerIdError as exc:
        raise UsageError(f"{source}: {exc}") from None


def _fd_from_env(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None or text == "":
        return None
    try:
        fd = int(text)
        os.fstat(fd)
    except (ValueError, OSError):
        raise UsageError(f"{name}={text!r} is not an open file descriptor") from None
    return fd


def _check_config(config: WorkerConfig, path: Path) -> None:
    """Values ``msgspec`` types cannot express; a hand-written file may get them wrong."""
    problems = []
    if config.format != FORMAT_VERSION:  # another nbtrain's file: its fields may mean more
        problems.append(
            f"format={config.format!r}, but this worker reads format {FORMAT_VERSION} files "
            "(the kernel and the worker come from different nbtrain versions)"
        )
    if not is_run_id(config.run_id):
        problems.append(f"run_id {config.run_id!r} is not a 26-character ULID")
    for name, low in (("episodes", 1), ("max_steps_per_episode", 1), ("start_episode", 0)):
        value = getattr(config, name)
        if value < low:
            problems.append(f"{name}={value!r} must be >= {low}")
    if config.checkpoint_every is not None and config.checkpoint_every < 1:
        problems.append(f"checkpoint_every={config.checkpoint_every!r} must be >= 1 or null")
    if config.step_delay < 0:
        problems.append(f"step_delay={config.step_delay!r} must be >= 0")
    steps = config.telemetry.steps
    if isinstance(steps, int) and steps < 1:
        problems.append(f"telemetry.steps={steps!r} must be 'all', 'none' or an integer >= 1")
    if config.telemetry.frame_every < 1:
        problems.append(f"telemetry.frame_every={config.telemetry.frame_every!r} must be >= 1")
    if problems:
        raise UsageError(f"config file {str(path)!r}: " + "; ".join(problems))


def parse_launch(argv: list[str] | None = None) -> Launch:
    """Everything the worker needs before it starts; raises :class:`UsageError`."""
    args = _parser().parse_args(argv)
    path = Path(args.config).absolute()
    try:
        config = load_worker_config(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"cannot read config file {str(path)!r}: {reason}") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UsageError(f"config file {str(path)!r} is not a valid worker config: {exc}") from None
    _check_config(config, path)
    file_id = _normalized(config.worker_id, f"config file {str(path)!r}")
    env_value = os.environ.get(WORKER_ID_ENV)
    env_id = _normalized(env_value, WORKER_ID_ENV) if env_value else None
    arg_id = _normalized(args.worker_id, "--worker-id") if args.worker_id is not None else None
    if arg_id is not None and env_id is not None and arg_id != env_id:
        raise UsageError(
            f"--worker-id {args.worker_id!r} and {WORKER_ID_ENV}={env_value!r} disagree "
            f"({arg_id!r} != {env_id!r})"
        )
    given, source = (arg_id, "--worker-id") if arg_id is not None else (env_id, WORKER_ID_ENV)
    if given is not None and given != file_id:
        raise UsageError(
            f"{source} is {given!r} but config file {str(path)!r} is for worker {file_id!r}"
        )
    telemetry_fd = _fd_from_env(TELEMETRY_FD_ENV)
    out = Path(args.out).absolute() if args.out else None
    if out is None and telemetry_fd is None and config.run_dir:
        out = Path.cwd() / "nbtrain-hand" / config.run_id
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} is a file; pass a folder (made if missing)")
    return Launch(
        config=config,
        config_path=path,
        worker_id=file_id,
        telemetry_fd=telemetry_fd,
        control_fd=_fd_from_env(CONTROL_FD_ENV),
        jsonl=bool(args.jsonl),
        out_dir=out,
    )
