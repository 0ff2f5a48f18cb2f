"""The ``nbtrain`` command line, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import nbtrain
from nbtrain.cli import main
from tests.kit.truth import episodes_have_all_steps, orphan_steps

pytestmark = pytest.mark.slow

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_v0.sqlite"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbtrain.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_run_with_worker_ids_then_runs_summary_export(db: Path) -> None:
    result = cli(
        "run",
        "--env",
        "FrozenLake-v1",
        "--env-kw",
        "is_slippery=false",
        "--episodes",
        "5",
        "--workers",
        "7,gpu_a,",
        "--set",
        "alpha=0.5",
        "--max-steps",
        "30",
        cwd=db.parent,
    )
    assert result.returncode == 0, result.stderr
    assert "000007" in result.stdout
    assert "gpu_a" in result.stdout
    assert "completed" in result.stdout
    run_id = nbtrain.TelemetryStore(db).runs()["run_id"].iloc[-1]

    listed = cli("runs", cwd=db.parent)
    assert listed.returncode == 0
    assert run_id in listed.stdout

    summary = cli("summary", run_id, cwd=db.parent)
    assert summary.returncode == 0
    assert summary.stdout.count("completed") >= 3

    for fmt in ("parquet", "csv"):
        exported = cli("export", run_id, "--format", fmt, "--out", "out", cwd=db.parent)
        assert exported.returncode == 0, exported.stderr
        path = db.parent / "out" / f"{run_id}-episodes.{fmt}"
        frame = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
        assert len(frame) == 15
        assert (db.parent / "out" / f"{run_id}-steps.{fmt}").exists()


def test_failed_worker_exits_1_and_says_why(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "run",
            "--env",
            "FrozenLake-v1",
            "--agent",
            "pipeline_agents:Raises",
            "--episodes",
            "3",
            "--no-progress",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "worker 000001 failed: " in err  # regression: the reason was only in the database
    assert "agent exploded on purpose" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--env", "Taxi-v3", "--episodes", "3"], "Taxi-v4"),
        (["run", "--episodes", "3"], "needs --env"),
        (["run", "--env", "FrozenLake-v1"], "needs --episodes"),
        (["run", "--env", "FrozenLake-v1", "--episodes", "3", "--set", "alpha"], "KEY=VALUE"),
        (["run", "--env", "FrozenLake-v1", "--episodes", "3", "--workers", "gpu-a"], "gpu-a"),
        (["summary", "01JAAAAAAAAAAAAAAAAAAAAAAA"], "no database"),
        (["migrate", "missing.sqlite"], "no database"),
        (["run", "--env", "FrozenLake-v1", "--episodes", "3", "--ray-address", "auto"],
         "--ray-address goes with --backend ray"),
        (["export", "01JAAAAAAAAAAAAAAAAAAAAAAA", "--out", "x", "--db", "."],
         "is a folder; pass the path of a .sqlite file"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_a_clear_line(
    db: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_unknown_run_id_exits_2(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--env", "FrozenLake-v1", "--episodes", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["summary", "01JAAAAAAAAAAAAAAAAAAAAAAA"]) == 2
    assert "01JAAAAAAAAAAAAAAAAAAAAAAA" in capsys.readouterr().err


def test_migrate_upgrades_a_legacy_file(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    legacy = db.parent / "legacy.sqlite"
    shutil.copy(LEGACY, legacy)
    assert main(["migrate", str(legacy)]) == 0
    assert "→" in capsys.readouterr().out
    episodes = nbtrain.TelemetryStore(legacy).episodes()
    assert set(episodes["worker_id"]) == {"000001"}
    # Regression: a second migrate said "schema version 4 → schema version 4".
    assert main(["migrate", str(legacy)]) == 0
    out = capsys.readouterr().out
    assert "already at schema version" in out
    assert "nothing to do" in out
    assert "→" not in out


@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_workers_flag_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """Regression (QA): --workers "" silently ran one auto-numbered worker."""
    with pytest.raises(SystemExit) as info:
        main(["run", "--env", "FrozenLake-v1", "--episodes", "1", "--workers", value])
    assert info.value.code == 2
    assert "is empty: give a count (4) or worker ids" in capsys.readouterr().err


def test_a_negative_worker_count_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: --workers -1 was read as a list of worker ids ('invalid worker id')."""
    with pytest.raises(SystemExit) as info:
        main(["run", "--env", "FrozenLake-v1", "--episodes", "1", "--workers", "-1"])
    assert info.value.code == 2
    assert "a worker count must be 1 or more, not -1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "message"),
    [("-1", "must be a finite number of seconds >= 0"), ("nan", "must be a finite number"),
     ("soon", "is not a number of seconds")],
)  # fmt: skip
def test_a_bad_stop_timeout_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    """Regression: --timeout -1 reached Run.stop and ended in a traceback with exit 1."""
    with pytest.raises(SystemExit) as info:
        main(["stop", "01JAAAAAAAAAAAAAAAAAAAAAAA", "--timeout", value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_migrate_of_an_empty_file_says_it_made_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    assert main(["migrate", str(empty)]) == 0
    out = capsys.readouterr().out
    assert "a new database → schema version" in out
    assert "None" not in out


def test_python_dash_m_nbtrain_is_the_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nbtrain", "runs", "--db", str(tmp_path / "none.sqlite")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("nbtrain runs: error:")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_stops_the_workers_and_the_run_ends_stopped(
    db: Path, signum: int
) -> None:
    # Regression: `kill` or a closed terminal ended the CLI before it told the workers; the
    # run was later settled `failed` ("its kernel died") although nothing had failed.
    cli_process = subprocess.Popen(
        [sys.executable, "-m", "nbtrain.cli", "run", "--env", "FrozenLake-v1",
         "--agent", "pipeline_agents:Slow", "--episodes", "100000", "--workers", "2",
         "--no-progress"],
        cwd=db.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if db.exists() and _running_workers(db) == 2:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the workers never ran")
        cli_process.send_signal(signum)
        _, err = cli_process.communicate(timeout=60)
    finally:
        if cli_process.poll() is None:
            cli_process.kill()
    assert cli_process.returncode == 128 + signum, err
    assert f"{signal.Signals(signum).name}; workers stopped" in err
    assert "Traceback" not in err
    store = nbtrain.TelemetryStore(db)
    run_id = store.runs()["run_id"].iloc[-1]
    workers = store.workers(run_id)
    assert set(workers["status"]) == {"stopped"}, workers[
        ["status", "error", "exit_code"]
    ].to_dict()
    assert store.runs().set_index("run_id").loc[run_id, "status"] == "stopped"
    assert episodes_have_all_steps(db) == []
    assert orphan_steps(db) == []


def _running_workers(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return int(
            con.execute("SELECT COUNT(*) FROM workers WHERE status = 'running'").fetchone()[0]
        )
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def test_the_console_script_imports_an_agent_from_the_current_folder(tmp_path: Path) -> None:
    # Regression: `nbtrain` (unlike `python -m nbtrain.cli`) had its own folder first on
    # sys.path, so `--agent mymodule:make` beside the user was "No module named 'mymodule'".
    script = Path(sys.executable).with_name("nbtrain")
    assert script.exists(), "the package is installed with its console script"
    (tmp_path / "my_cwd_agents.py").write_text(
        "class Agent:\n"
        "    def __init__(self, observation_space, action_space, seed=0, **kw):\n"
        "        self.space = action_space\n"
        "        self.space.seed(seed)\n"
        "    def act(self, obs, explore=True):\n"
        "        return self.space.sample()\n"
        "    def learn(self, *args):\n"
        "        pass\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(script), "run", "--env", "FrozenLake-v1", "--agent", "my_cwd_agents:Agent",
         "--episodes", "2", "--no-progress"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout
