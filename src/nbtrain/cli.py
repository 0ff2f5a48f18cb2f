"""``nbtrain`` on the command line: run, demo, runs, summary, export, migrate, stop.

Exit codes: 0 success, 1 a run ended with a failed worker, 2 bad input (the message names
it), 130 interrupted (the workers are stopped first).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrain.cli_manage import COMMANDS as MANAGE_COMMANDS
from nbtrain.cli_manage import add_parsers as add_manage_parsers
from nbtrain.errors import NbtrainError
from nbtrain.ids import check_run_id

if TYPE_CHECKING:
    import pandas as pd
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


class UsageError(Exception):
    """Bad input on the command line: exit code 2 with one clear line."""


def one_line(exc: BaseException) -> str:
    """The error as one line: a pydantic error lists each problem as ``field: message``."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            parts = [
                f"{'.'.join(str(p) for p in e.get('loc', ())) or 'config'}: {e.get('msg', '')}"
                for e in errors()
            ]
        except Exception:
            parts = []
        if parts:
            return "; ".join(parts)
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _parse_value(text: str) -> Any:
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
    if text.isdigit() and "," not in text:
        return int(text)
    return [item.strip() or None for item in text.split(",")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbtrain", description="Run and study RL experiments (multi-worker, SQLite)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add_backend(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--backend",
            choices=["local", "ray"],
            default="local",
            help="where workers run: local subprocesses (default) or Ray actors",
        )
        p.add_argument("--ray-address", help="a Ray cluster (default: RAY_ADDRESS or a local one)")

    def add_db(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", default="nbtrain.sqlite", help="SQLite file (default: %(default)s)")

    run = sub.add_parser("run", help="train with several workers and show their progress")
    run.add_argument("--config", help="a TrainConfig .json or .toml file")
    run.add_argument("--env", dest="env_id", help="Gymnasium env id, e.g. FrozenLake-v1")
    run.add_argument("--env-kw", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--agent", help="q_learning, sarsa, expected_sarsa, random or pkg.mod:factory")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="agent hyperparameter, e.g. --set alpha=0.5",
    )
    run.add_argument("--episodes", type=int)
    run.add_argument("--max-steps", type=int, dest="max_steps_per_episode")
    run.add_argument("--seed", type=int)
    run.add_argument(
        "--workers", type=_parse_workers, help="a count (4) or worker ids (7,gpu_a, ; empty = auto)"
    )
    run.add_argument("--steps", help="record steps: all, none or every N-th")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_backend(run)
    add_db(run)

    demo = sub.add_parser("demo", help="a 4-worker FrozenLake run on the embedded SQLite default")
    demo.add_argument("--episodes", type=int, default=DEMO["episodes"])
    demo.add_argument("--workers", type=int, default=DEMO["workers"])
    demo.add_argument("--no-progress", action="store_true")
    add_backend(demo)
    add_db(demo)

    runs = sub.add_parser("runs", help="list the runs in a database")
    add_db(runs)

    summary = sub.add_parser("summary", help="one row per worker of a run")
    summary.add_argument("run_id")
    add_db(summary)

    export = sub.add_parser("export", help="write a run's episodes and steps to files")
    export.add_argument("run_id")
    export.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    export.add_argument("--out", default=".", help="folder for the files (default: .)")
    export.add_argument("--force", action="store_true", help="overwrite existing files")
    add_db(export)

    stop = sub.add_parser("stop", help="stop a run's workers (also one another process owns)")
    stop.add_argument("run_id")
    stop.add_argument("--worker", help="only this worker id")
    stop.add_argument("--timeout", type=float, default=10.0, help="seconds (default: 10)")
    add_db(stop)

    migrate = sub.add_parser("migrate", help="upgrade a database to the current schema")
    migrate.add_argument("db")
    add_manage_parsers(sub, add_db)  # rm, archive, du
    return parser


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
    """Wait for the run with one progress bar per worker; Ctrl-C stops the workers."""
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
            try:
                done = run._session is None or run._session.all_done.wait(0)
                version = live.wait_for_change(version, timeout=0.2)
            except KeyboardInterrupt:
                run.stop()
                raise
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


def _print_frame(console: Console, frame: pd.DataFrame, title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[_cell(v) for v in row])
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"
    return "" if value is None else str(value)


def _cmd_run(args: argparse.Namespace, console: Console) -> int:
    import nbtrain

    config = (
        DEMO | {"episodes": args.episodes, "workers": args.workers}
        if args.command == "demo"
        else _config_from_args(args)
    )
    run = nbtrain.launch(config, db=args.db, backend=_backend(args))
    console.print(f"run [bold]{run.run_id}[/] → {run.db}")
    statuses = _follow(run, console, not args.no_progress)
    _print_frame(console, run.summary(), f"run {run.run_id}: {run.run_status}")
    return 1 if "failed" in statuses.values() else 0


def _backend(args: argparse.Namespace) -> Any:
    if args.ray_address and args.backend != "ray":
        raise UsageError("--ray-address goes with --backend ray")
    if args.backend != "ray":
        return "local"
    from nbtrain.dispatch.ray_backend import RayBackend

    return RayBackend(address=args.ray_address) if args.ray_address else "ray"


def _cmd_runs(args: argparse.Namespace, console: Console) -> int:
    store = _open_store(args.db)
    runs = store.runs()
    shown = [c for c in ("run_id", "name", "created_at", "status", "digest") if c in runs]
    runs = runs[shown].assign(digest=runs["digest"].str[:12]) if "digest" in shown else runs
    _print_frame(console, runs, f"runs in {args.db}")
    return 0


def _cmd_summary(args: argparse.Namespace, console: Console) -> int:
    run_id = check_run_id(args.run_id)
    store = _open_store(args.db)
    _print_frame(console, store.run_summary(run_id), f"run {run_id}")
    return 0


def _cmd_export(args: argparse.Namespace, console: Console) -> int:
    run_id = check_run_id(args.run_id)  # a ULID: the file names below cannot leave --out
    store = _open_store(args.db)
    out = Path(args.out)
    paths = {table: out / f"{run_id}-{table}.{args.format}" for table in ("episodes", "steps")}
    existing = [str(p) for p in paths.values() if p.exists() or p.is_symlink()]
    if existing and not args.force:
        raise UsageError(f"{', '.join(existing)} already exist(s); pass --force to overwrite")
    frames = {table: getattr(store, table)(run_id) for table in paths}
    out.mkdir(parents=True, exist_ok=True)
    for table, path in paths.items():
        if path.is_symlink():
            path.unlink()  # --force replaces the link itself, never what it points to
        frame = frames[table]
        if args.format == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        console.print(f"{table}: {len(frame)} rows → {path}")
    return 0


def _cmd_stop(args: argparse.Namespace, console: Console) -> int:
    from nbtrain.run import Run

    run = Run.open(check_run_id(args.run_id), db=args.db)
    statuses = run.stop(args.worker, timeout=args.timeout)
    _print_frame(console, run.summary(), f"run {run.run_id}: {run.run_status}")
    return 1 if "failed" in statuses.values() else 0


def _cmd_migrate(args: argparse.Namespace, console: Console) -> int:
    from nbtrain.store import migrate

    if not Path(args.db).is_file():
        raise UsageError(f"no database file at {args.db}")
    before, after = migrate(args.db)
    console.print(f"{args.db}: schema version {before} → {after}")
    return 0


def _open_store(db: str) -> Any:
    from nbtrain.store import TelemetryStore

    if not Path(db).is_file():
        raise UsageError(f"no database file at {db}")
    return TelemetryStore(db)


COMMANDS = {
    "run": _cmd_run,
    "demo": _cmd_run,
    "runs": _cmd_runs,
    "summary": _cmd_summary,
    "export": _cmd_export,
    "migrate": _cmd_migrate,
    "stop": _cmd_stop,
}
COMMANDS.update(MANAGE_COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError
    from rich.console import Console

    args = build_parser().parse_args(argv)
    # Not a terminal (a pipe, CI): wide enough that run ids are never cut.
    width = None if sys.stdout.isatty() else 200
    console = Console(highlight=False, width=width)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["main"]
