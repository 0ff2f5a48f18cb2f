"""The heartbeat's ε: read from the agent's last extras only when a heartbeat is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.kit.worker import make_config, run_worker

from nbtrain.wire import events as ev
from nbtrain.worker.heartbeat import LoopState


@pytest.mark.parametrize(
    ("end", "step", "expected"),
    [
        ({"epsilon": 0.25}, {"epsilon": 0.5}, 0.25),  # end_episode() wins
        (None, {"epsilon": 0.5, "td_error": 1.0}, 0.5),  # else the last learn()'s
        ({"other": 1}, {"epsilon": 1}, 1.0),  # ints become floats
        ({"epsilon": True}, None, None),  # a bool is not an ε
        ({"epsilon": "0.1"}, ["epsilon"], None),  # neither are strings or non-dicts
        (None, None, None),
        (0.125, None, 0.125),  # the one-call tabular episode keeps ε itself, no dict
        (None, 0.5, 0.5),  # ... and before its first episode ends
        # regression: an ε of 0 (greedy) is an ε, not a reason to look further
        ({"epsilon": 0.0}, {"epsilon": 0.5}, 0.0),
        (0.0, 0.5, 0.0),
    ],
)
def test_epsilon_comes_from_the_last_extras(end: object, step: object, expected: object) -> None:
    state = LoopState(0)
    assert state.epsilon is None
    state.extras = (end, step)
    assert state.epsilon == expected


def _beats_before_the_first_episode(tmp_path: Path, **fields: Any) -> list[ev.Progress]:
    """The heartbeats of a worker playing one 1.2 s episode (40 steps of 30 ms) of a
    discrete env with a built-in agent: the one-call episode."""
    config = make_config(
        tmp_path,
        env_id="worker_agents:NbtSlowCorridor-v0",
        episodes=1,
        max_steps_per_episode=40,
        **fields,
    )
    result = run_worker(config)
    assert result.code == 0, result.stderr.decode()
    kinds = [type(e).__name__ for e in result.events]
    first_episode = kinds.index("Episode")
    beats = [e for e in result.events[:first_episode] if isinstance(e, ev.Progress)]
    assert beats, kinds
    return beats


def test_heartbeats_during_the_first_one_call_episode_carry_epsilon(tmp_path: Path) -> None:
    # The built-in agent's one-call episode returns no per-step extras; before its first
    # episode ends, the heartbeat's ε comes from the agent's starting ε.
    beats = _beats_before_the_first_episode(tmp_path, agent_kwargs={"epsilon": 0.75})
    assert {b.epsilon for b in beats} == {0.75}


def test_heartbeats_count_the_steps_of_a_one_call_episode_as_it_goes(tmp_path: Path) -> None:
    # Regression: counting a one-call episode's steps only once it ended made every heartbeat
    # of a long episode say 0 steps (and the dashboard's count, which Steps events raise,
    # fall back to 0 at each heartbeat).
    beats = _beats_before_the_first_episode(tmp_path, telemetry={"steps": "none"})
    assert all(0 < b.steps_done < 40 for b in beats[1:]), [b.steps_done for b in beats]
    assert any(b.steps_per_s > 0 for b in beats), [b.steps_per_s for b in beats]
