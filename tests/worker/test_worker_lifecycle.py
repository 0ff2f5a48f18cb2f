"""How a worker ends: stop frame, SIGTERM, kernel death, failures, bad launches, broken
pipes, a noisy agent; and what it imports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.kit.worker import make_config, run_worker, start_worker, worker_env

from nbtrain.wire import events as ev
from nbtrain.worker.entry import main

SLOW_STEPS = {"step_delay": 0.02, "episodes": 1000, "max_steps_per_episode": 100}


def test_stop_frame_ends_stopped_with_exit_0(tmp_path: Path) -> None:
    handle = start_worker(make_config(tmp_path, **SLOW_STEPS))
    handle.wait_for(lambda e: isinstance(e, ev.Steps))
    handle.send_stop()
    result = handle.wait(30)
    assert result.code == 0, result.stderr.decode()
    ended = result.events[-1]
    assert isinstance(ended, ev.Ended)
    assert ended.status == "stopped"
    assert result.of(ev.Artifact)  # the policy is saved when stopped too
    assert (tmp_path / "policy-000001.json").exists()
    # The unfinished episode has steps but no Episode event.
    finished = {e.ep_index for e in result.of(ev.Episode)}
    stepped = {ep for b in result.of(ev.Steps) for ep in b.ep_index}
    assert stepped - finished
    assert ended.steps_done == sum(len(b) for b in result.of(ev.Steps))


def test_sigterm_ends_stopped_with_exit_0(tmp_path: Path) -> None:
    handle = start_worker(make_config(tmp_path, **SLOW_STEPS))
    handle.wait_for(lambda e: isinstance(e, ev.Steps))
    handle.popen.send_signal(signal.SIGTERM)
    result = handle.wait(30)
    assert result.code == 0
    assert result.events[-1].status == "stopped"
    assert result.errors == []


def test_heartbeat_while_a_step_is_stuck(tmp_path: Path) -> None:
    handle = start_worker(make_config(tmp_path, agent="Stuck", agent_kwargs={"sleep": 30.0}))
    handle.wait_for(lambda e: isinstance(e, ev.Progress) and e.steps_done == 0)
    handle.popen.kill()
    handle.wait(10)


@pytest.mark.slow
def test_control_pipe_eof_exits_within_two_seconds_even_when_stuck(tmp_path: Path) -> None:
    handle = start_worker(make_config(tmp_path, agent="Stuck", agent_kwargs={"sleep": 60.0}))
    handle.wait_for(lambda e: isinstance(e, ev.Progress))
    began = time.monotonic()
    handle.close_control()  # what the kernel's death looks like from the worker
    result = handle.wait(30)
    elapsed = time.monotonic() - began
    assert elapsed < 5.0  # the contract is 2 s; generous slack for a loaded machine
    assert result.code == 0
    assert b"Traceback" not in result.stderr


def test_control_pipe_eof_between_steps_stops_cleanly(tmp_path: Path) -> None:
    handle = start_worker(make_config(tmp_path, **SLOW_STEPS))
    handle.wait_for(lambda e: isinstance(e, ev.Steps))
    handle.close_control()
    result = handle.wait(30)
    assert result.code == 0
    assert result.events[-1].status == "stopped"


def test_agent_exception_is_failed_with_traceback_exit_1(tmp_path: Path) -> None:
    result = run_worker(make_config(tmp_path, agent="Raises", agent_kwargs={"fail_at": 5}))
    assert result.code == 1
    ended = result.events[-1]
    assert isinstance(ended, ev.Ended)
    assert ended.status == "failed"
    assert ended.error == "RuntimeError: agent exploded on purpose"
    assert ended.traceback is not None
    assert "worker_agents.py" in ended.traceback
    assert "raise RuntimeError" in ended.traceback
    assert b"agent exploded on purpose" in result.stderr
    assert result.of(ev.Artifact) == []


def test_unknown_env_and_agent_fail_after_started(tmp_path: Path) -> None:
    result = run_worker(make_config(tmp_path, env_id="NoSuchEnv-v0"))
    assert result.code == 1
    assert result.types == ["Started", "Ended"]
    assert "NoSuchEnv" in result.events[-1].error
    result = run_worker(make_config(tmp_path, agent="NotThere"))
    assert result.code == 1
    assert "NotThere" in result.events[-1].error


def test_sys_exit_in_agent_code_sends_the_finished_episodes_first(
    tmp_path: Path,
) -> None:
    """Regression (worker audit): the episodes finished before agent code called
    sys.exit() were never flushed. The process still exits as that code asked (the kernel
    reports its exit code and what it printed), but after sending them."""
    result = run_worker(make_config(tmp_path, agent="ExitsMidRun", episodes=10))
    assert result.code == 1  # sys.exit("message"): Python's exit code 1
    assert b"the agent gave up" in result.stderr
    assert result.types[0] == "Started"
    assert "Ended" not in result.types  # as for a process that exits
    assert [e.ep_index for e in result.of(ev.Episode)] == [0, 1]  # finished before the exit


def test_stdout_flood_does_not_corrupt_telemetry(tmp_path: Path) -> None:
    # 100 steps x 100 kB = 10 MB printed while telemetry streams on its own pipe.
    config = make_config(
        tmp_path,
        agent="Chatty",
        agent_kwargs={"chars": 100_000},
        episodes=100,
        max_steps_per_episode=10,
    )
    result = run_worker(config)
    assert result.code == 0, result.stderr[-2000:].decode()
    assert len(result.stdout) >= 10_000_000
    assert result.errors == []
    assert len(result.of(ev.Episode)) == 100
    assert result.events[-1].status == "completed"


def test_broken_telemetry_pipe_exits_quietly(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the kernel is gone before the worker writes anything
    env = worker_env(NBTRAIN_TELEMETRY_FD=str(write_end))
    out = subprocess.run(
        [sys.executable, "-m", "nbtrain.worker", "--config", str(make_config(tmp_path))],
        capture_output=True,
        env=env,
        pass_fds=(write_end,),
        timeout=60,
    )
    os.close(write_end)
    assert out.returncode == 0
    assert b"Traceback" not in out.stderr
    assert b"BrokenPipe" not in out.stderr


def test_worker_imports_nothing_heavy(tmp_path: Path) -> None:
    dump = tmp_path / "modules.txt"
    env = worker_env(NBTRAIN_WORKER_DUMP_MODULES=str(dump))
    config = make_config(tmp_path, telemetry={"frames": "ansi"})
    result = run_worker(config, env=env)
    assert result.code == 0
    modules = set(dump.read_text().split())
    assert "gymnasium" in modules  # the dump is real
    heavy = {"pandas", "pyarrow", "pydantic", "ipywidgets", "anywidget", "matplotlib", "torch"}
    assert heavy.isdisjoint({m.split(".")[0] for m in modules})


# -- exit code 2: one clear line on stderr --------------------------------------------------


def run_main(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             **env: str) -> str:  # fmt: skip
    for name in ("WORKER_ID", "NBTRAIN_TELEMETRY_FD", "NBTRAIN_CONTROL_FD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("nbtrain.worker: error: ")
    return lines[0]


def test_exit_2_cases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(make_config(tmp_path, worker_id="000003"))
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text('{"run_id": "x", "worker_id": "1"}')
    zero = str(make_config(tmp_path, name="zero.json", episodes=0, run_id="not-a-ulid"))
    no_ckpt = str(make_config(tmp_path, name="ckpt.json", checkpoint_every=0))
    newer = str(make_config(tmp_path, name="newer.json", format=99))  # regression: it ran
    cases = [
        ([], {}, "the following arguments are required: --config"),
        (["--config", str(tmp_path / "missing.json")], {}, "No such file or directory"),
        (["--config", str(bad_json)], {}, "is not a valid worker config"),
        (["--config", str(incomplete)], {}, "missing required field"),
        (["--config", zero], {}, "episodes=0 must be >= 1"),
        (["--config", zero], {}, "'not-a-ulid' is not a 26-character ULID"),
        (["--config", no_ckpt], {}, "checkpoint_every=0 must be >= 1 or null"),
        (["--config", newer], {}, "format=99, but this worker reads format 1 files"),
        (["--config", config, "--worker-id", "3"], {"WORKER_ID": "4"}, "disagree ('000003' != "),
        (["--config", config, "--worker-id", "5"], {}, "--worker-id is '000005' but config file"),
        (["--config", config], {"WORKER_ID": "w9"}, "WORKER_ID is '000009' but config file"),
        (["--config", config, "--worker-id", "bad-id"], {}, "invalid worker id 'bad-id'"),
        (["--config", config], {"NBTRAIN_TELEMETRY_FD": "nope"}, "NBTRAIN_TELEMETRY_FD='nope'"),
        (["--config", config], {"NBTRAIN_CONTROL_FD": "987"}, "is not an open file descriptor"),
        (["--config", config, "--bogus"], {}, "unrecognized arguments: --bogus"),
    ]
    for argv, env, expected in cases:
        line = run_main(argv, monkeypatch, capsys, **env)
        assert expected in line, (argv, env, line)


def test_matching_ids_in_any_spelling_are_accepted(tmp_path: Path) -> None:
    config = make_config(tmp_path, worker_id="000003", episodes=1)
    result = run_worker(config, "W3", env=worker_env(WORKER_ID="0003"))
    assert result.code == 0, result.stderr.decode()
    assert result.events[0].worker_id == "000003"


def test_exit_2_from_the_command_line(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "nbtrain.worker", "--config", str(config), "--worker-id", "2"],
        capture_output=True,
        env=worker_env(WORKER_ID="2"),
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stdout == b""
    lines = out.stderr.decode().splitlines()
    assert lines == [
        f"nbtrain.worker: error: --worker-id is '000002' but config file '{config}' is for "
        "worker '000001'"
    ]
