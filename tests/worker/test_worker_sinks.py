"""The worker's other sinks: JSON lines on stdout (``--jsonl``) and the stderr summary."""

from __future__ import annotations

import io

from tests.kit.events import progress
from tests.kit.pipes import read_available

from nbtrain.wire import events as ev
from nbtrain.worker.sinks import (
    JsonLinesSink,
    SummarySink,
)

RUN = "01J00000000000000000000000"


def test_jsonl_sink_writes_lines(pipe: tuple[int, int]) -> None:
    r, w = pipe
    sink = JsonLinesSink(w)
    sink.send(progress())
    sink.send(progress())
    assert sink.pending() > 0
    sink.push()
    lines = read_available(r).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(b'{"type":"progress"')


def test_summary_sink_lines() -> None:
    out = io.StringIO()
    sink = SummarySink(out, interval=0.0)
    common = {"run_id": RUN, "worker_id": "000002"}
    sink.send(
        ev.Started(
            **common,
            pid=1,
            ts=0.0,
            digest="",
            env_id="Taxi-v4",
            agent="sarsa",
            mode="train",
            episodes=10,
            start_episode=0,
        )
    )
    sink.send(
        ev.Episode(
            **common,
            ep_index=0,
            episode_id="x",
            total_reward=-3.0,
            length=5,
            terminated=True,
            truncated=False,
            seed=1,
            started_at=0,
            ended_at=1,
        )
    )
    sink.send(
        ev.Progress(
            **common,
            ts=1.0,
            episodes_done=1,
            steps_done=5,
            steps_per_s=99.0,
            ep_index=1,
            epsilon=0.5,
        )
    )
    sink.send(
        ev.Ended(
            **common,
            status="failed",
            ts=2.0,
            episodes_done=1,
            steps_done=5,
            error="ValueError: boom",
        )
    )
    lines = out.getvalue().splitlines()
    assert lines[0] == "worker 000002: train sarsa on Taxi-v4, episodes 0..9"
    assert lines[1] == (
        "worker 000002: episode 2/10, 5 steps, 99 steps/s, epsilon 0.500, last return -3"
    )
    assert lines[2] == (
        "worker 000002 failed: ValueError: boom: 1 episodes, 5 steps in 2.0 s, mean return -3"
    )
