"""The ingest thread polls workers for their exit on a clock, not after every read."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import nbtrain
from nbtrain.dispatch import ingest
from nbtrain.dispatch.process import WorkerProcess

pytestmark = pytest.mark.slow


def test_workers_are_polled_on_a_clock_not_after_every_read(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chatty worker makes many reads; polling it after each one was 8 % of the ingest
    thread's CPU. Its exit is still seen, and the run ends as it should.

    How many reads a run makes depends on how fast the kernel drains the pipes (a slow
    machine reads more bytes at a time: 81 reads of 30 episodes seen once); polling after
    every select round gave 0.64 polls a read, which the last assertion catches from a few
    dozen reads on."""
    counts = {"reads": 0, "polls": 0}
    read, poll = ingest.Ingest._read, WorkerProcess.poll

    def counted_read(self: ingest.Ingest, stream: ingest.WorkerStream, fd: int) -> None:
        counts["reads"] += 1
        read(self, stream, fd)

    def counted_poll(self: WorkerProcess) -> int | None:
        counts["polls"] += 1
        return poll(self)

    monkeypatch.setattr(ingest.Ingest, "_read", counted_read)
    monkeypatch.setattr(WorkerProcess, "poll", counted_poll)
    config = nbtrain.TrainConfig(
        env_id="FrozenLake-v1", env_kwargs={"is_slippery": False},
        agent="pipeline_agents:Chatty", episodes=60, max_steps_per_episode=50, workers=1,
    )  # fmt: skip
    started = time.monotonic()
    run = nbtrain.launch(config, db=db)
    assert run.wait(timeout=120) == {"000001": "completed"}
    elapsed = time.monotonic() - started
    assert len(run.episodes()) == 60
    assert counts["reads"] >= 50, counts
    assert counts["polls"] <= elapsed / ingest.REAP_EVERY_S + 5, (counts, elapsed)
    assert counts["polls"] < counts["reads"] / 2, counts
