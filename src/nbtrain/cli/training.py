"""``nbtrain run``, ``demo`` and ``stop``: starting runs, following them, stopping them."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nbtrain.cli.common import (
    UsageError,
    add_db,
    print_frame,
    report_failures,
    run_id_arg,
    seconds,
)
from nbtrain.cli.signals import Termination

if TYPE_CHECKING:
    from rich.console import Console

    from nbtrain.run import Run

DEMO = {
    "env_id": "FrozenLake-v1",
    "env_kwargs": {"is_slippery": False},
    "agent": "q_learning",
    "episodes": 600,
    "workers": 4,
    "seed": 0,
}


def add_parsers(sub: Any) -> None:
    run = sub.add_parser("run", help="train with several workers and show their progress")
    run.add_argument("--config", help="a TrainConfig .json or .toml file")
    run.add_argument("--env", dest="env_id", help="Gymnasium env id, e.g. FrozenLake-v1")
    run.add_argument(
        "--env-kw",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="gymnasium.make keyword, e.g. --env-kw is_slippery=False (JSON or True/False/None)",
    )
    run.add_argument(
        "--agent",
        help="q_learning, sarsa, expected_sarsa, tile_sarsa, random or pkg.mod:factory",
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="agent hyperparameter, e.g. --set alpha=0.5",
    )
    run.add_argument("--episodes", type=int, metavar="N", help="episodes per worker")
    run.add_argument(
        "--max-steps",
        type=int,
        dest="max_steps_per_episode",
        metavar="N",
        help="time limit: steps before an episode is truncated (default: the env's own)",
    )
    run.add_argument("--seed", type=int, metavar="N", help="base seed; each worker derives its own")
    run.add_argument(
        "--workers", type=_parse_workers, help="a count (4) or worker ids (7,gpu_a, ; empty = auto)"
    )
    run.add_argument("--steps", help="record steps: all, none or every N-th")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_backend(run)
    add_db(run)

    demo = sub.add_parser("demo", help="a 4-worker FrozenLake run on the embedded SQLite default")
    demo.add_argument(
        "--episodes",
        type=int,
        default=DEMO["episodes"],
        metavar="N",
        help="per worker (default: %(default)s)",
    )
    demo.add_argument(
        "--workers",
        type=int,
        default=DEMO["workers"],
        metavar="N",
        help="how many (default: %(default)s)",
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_backend(demo)
    add_db(demo)

    stop = sub.add_parser("stop", help="stop a run's workers (also one another process owns)")
    stop.add_argument("run_id", help="the run's ULID (see nbtrain runs)")
    stop.add_argument("--worker", help="only this worker id")
    stop.add_argument("--timeout", type=seconds, default=10.0, help="seconds (default: 10)")
    add_db(stop)


def _add_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="where workers run: local subprocesses (default) or Ray actors",
    )
    parser.add_argument("--ray-address", help="a Ray cluster (default: RAY_ADDRESS or a local one)")


# Python spellings a user types after writing gym.make(..., is_slippery=False).
_WORDS: dict[str, Any] = {"true": True, "false": False, "none": None, "null": None}


def _parse_value(text: str) -> Any:
    """A JSON value (``0.5``, ``[4, 4]``, ``true``), ``True``/``False``/``None`` in any
    case, else the text itself; a string that reads as one of those is written ``'"True"'``."""
    word = _WORDS.get(text.strip().lower(), text)
    if word is not text:
        return word
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_pairs(pairs: Sequence[str], flag: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} takes KEY=VALUE, got {pair!r}")
        result[key.strip()] = _parse_value(value)
    return result


def _parse_workers(text: str) -> int | list[Any]:
    """``4`` → four auto ids; ``7,gpu_a,`` → those ids (an empty item is an auto id)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give a count (4) or worker ids (7,gpu_a)")
    if text.isdigit() and "," not in text:
        return int(text)
    if text.startswith("-") and text[1:].isdigit():
        raise argparse.ArgumentTypeError(f"a worker count must be 1 or more, not {text}")
    return [item.strip() or None for item in text.split(",")]


def _config_from_args(args: argparse.Namespace) -> Any:
    from nbtrain.config import TrainConfig
    from nbtrain.config.model import default_name

    fields: dict[str, Any] = {}
    if args.config:
        base = TrainConfig.load(args.config)
        fields = base.model_dump(exclude_unset=True)
        if base.name == default_name(base.env_id, base.agent):
            fields.pop("name", None)  # a derived name follows --env/--agent overrides
    for name in ("env_id", "agent", "episodes", "max_steps_per_episode", "seed", "workers"):
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    if args.env_kw:
        fields["env_kwargs"] = {
            **fields.get("env_kwargs", {}),
            **_parse_pairs(args.env_kw, "--env-kw"),
        }
    if args.set:
        fields["agent_kwargs"] = {
            **fields.get("agent_kwargs", {}),
            **_parse_pairs(args.set, "--set"),
        }
    if args.steps is not None:
        steps: Any = int(args.steps) if args.steps.isdigit() else args.steps
        fields["telemetry"] = {**dict(fields.get("telemetry") or {}), "steps": steps}
    if "env_id" not in fields:
        raise UsageError("nbtrain run needs --env ENV_ID or --config FILE")
    if "episodes" not in fields:
        raise UsageError("nbtrain run needs --episodes N or --config FILE")
    return TrainConfig.model_validate(fields)


def _follow(run: Run, console: Console, show_progress: bool) -> dict[str, str]:
    """Wait for the run with one progress bar per worker (the caller stops the workers on
    Ctrl-C)."""
    from nbtrain.live.hub import get_hub

    live = get_hub().get(run.run_id)
    if not show_progress or live is None:
        return run.wait()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (
        TextColumn("worker {task.fields[wid]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TextColumn("{task.fields[rate]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        tasks = {
            wid: progress.add_task(
                "", total=w.episodes_total or None, wid=wid, status="pending", rate=""
            )
            for wid, w in live.workers.items()
        }
        version = -1
        while True:
            done = run._session is None or run._session.all_done.wait(0)
            version = live.wait_for_change(version, timeout=0.2)
            with live.lock:
                for wid, w in live.workers.items():
                    progress.update(
                        tasks[wid],
                        completed=w.episodes_done,
                        total=w.episodes_total or None,
                        status=w.status,
                        rate=f"{w.steps_per_s:,.0f} steps/s" if w.steps_per_s else "",
                    )
            if done:
                break
    return run.wait()


def _cmd_run(args: argparse.Namespace, console: Console) -> int:
    from nbtrain.run import launch

    config = (
        DEMO | {"episodes": args.episodes, "workers": args.workers}
        if args.command == "demo"
        else _config_from_args(args)
    )
    termination = getattr(args, "termination", None) or Termination()
    with termination.deferred():  # SIGTERM/SIGHUP stop the run (cli/signals.py)
        run = launch(config, db=args.db, backend=_backend(args))
    termination.follow(run.stop)
    try:
        console.print(f"run {run.run_id} → {run.db}")
        statuses = _follow(run, console, not args.no_progress)
    except KeyboardInterrupt:  # Ctrl-C, also before wait() began
        run.stop()
        raise
    print_frame(console, run.summary(), f"run {run.run_id}: {run.run_status}")
    report_failures(run.store.workers(run.run_id))
    return 1 if "failed" in statuses.values() else 0


def _backend(args: argparse.Namespace) -> Any:
    if args.ray_address and args.backend != "ray":
        raise UsageError("--ray-address goes with --backend ray")
    if args.backend != "ray":
        return "local"
    from nbtrain.dispatch.ray_backend import RayBackend

    return RayBackend(address=args.ray_address) if args.ray_address else "ray"


def _cmd_stop(args: argparse.Namespace, console: Console) -> int:
    from nbtrain.run import Run

    run = Run.open(run_id_arg(args.run_id), db=args.db)
    try:
        statuses = run.stop(args.worker, timeout=args.timeout)
    except TimeoutError as exc:  # the owning kernel has not recorded the stop yet
        raise UsageError(str(exc)) from exc
    print_frame(console, run.summary(), f"run {run.run_id}: {run.run_status}")
    report_failures(run.store.workers(run.run_id))
    return 1 if "failed" in statuses.values() else 0


COMMANDS = {"run": _cmd_run, "demo": _cmd_run, "stop": _cmd_stop}
