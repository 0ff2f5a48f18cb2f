"""Agents that misbehave, on both backends: a step that never returns, an agent that calls
``sys.exit``, one that kills its own process. A Ray worker runs inside its actor's process,
so each of these reaches the kernel by another road than a subprocess's exit; the outcome
must read the same."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.kit.backends import Launch, config, worker_rows
from tests.kit.processes import wait_for, wait_gone
from tests.kit.truth import no_live_rows, whole_episodes

pytestmark = pytest.mark.slow


def test_a_hung_step_is_ended_by_stop(launch: Launch, db: Path, backend: str) -> None:
    run = launch(config(agent="backend_agents:Hangs", agent_kwargs={"at": 5}, workers=1), db=db,
                 backend=backend)  # fmt: skip
    wait_for(lambda: bool(worker_rows(db, run.run_id).get("000001", {}).get("pid")))
    pid = worker_rows(db, run.run_id)["000001"]["pid"]
    time.sleep(1.0)  # well inside the step that never returns
    t0 = time.monotonic()
    assert run.stop(timeout=2) == {"000001": "stopped"}
    assert time.monotonic() - t0 < 60, "stop() gave up on asking and killed the worker"
    assert wait_gone(pid, 10)
    row = worker_rows(db, run.run_id)["000001"]
    assert row["status"] == "stopped"
    assert "hanging now" in (row["output"] or ""), "what the agent printed reached the kernel"
    whole_episodes(db, run.run_id)
    no_live_rows(db, run.run_id)


def test_an_agent_calling_sys_exit_fails_with_its_code(
    launch: Launch, db: Path, backend: str
) -> None:
    run = launch(config(agent="backend_agents:Exits", agent_kwargs={"at": 3}, workers=1), db=db,
                 backend=backend)  # fmt: skip
    assert run.wait(timeout=120) == {"000001": "failed"}
    row = worker_rows(db, run.run_id)["000001"]
    assert row["exit_code"] == 3
    assert "exited with code 3" in row["error"]
    assert "exiting on purpose" in row["error"]
    whole_episodes(db, run.run_id)
    no_live_rows(db, run.run_id)


def test_an_agent_that_kills_its_process_fails_the_worker(
    launch: Launch, db: Path, backend: str
) -> None:
    run = launch(config(agent="backend_agents:KillsItself", agent_kwargs={"at": 3}, workers=1),
                 db=db, backend=backend)  # fmt: skip
    assert run.wait(timeout=120) == {"000001": "failed"}
    row = worker_rows(db, run.run_id)["000001"]
    assert row["exit_code"] == -signal.SIGKILL
    whole_episodes(db, run.run_id)
    no_live_rows(db, run.run_id)
    if backend == "ray":
        assert "Ray actor" in row["error"], row["error"]
    else:
        assert "SIGKILL" in row["error"]
    # Only whole episodes stay: the steps of the episode it died in are gone. (A subprocess's
    # last writes survive it in the pipe; a Ray actor loses the <= 50 ms batch it held.)
    episodes = run.episodes()
    assert len(run.steps()) == (int(episodes["length"].sum()) if len(episodes) else 0)
