"""The time limit a worker applies is the one the config resolved: FrozenLake-v1's
registered 100 by default, an explicit value otherwise (behaviour, not just the number)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.kit.worker import make_config, run_worker

from nbtrain.config import TrainConfig
from nbtrain.dispatch.runfiles import write_worker_config
from nbtrain.ids import new_run_id
from nbtrain.wire import events as ev

# FrozenLake-v1 without holes: a random walk reaches the goal only sometimes
OPEN_LAKE = {"desc": ["SFFF", "FFFF", "FFFF", "FFFG"], "is_slippery": True}


def _lengths(tmp_path: Path, **fields: object) -> list[tuple[int, bool, bool]]:
    config = TrainConfig(
        env_id="FrozenLake-v1",
        env_kwargs=OPEN_LAKE,
        agent="random",
        episodes=60,
        telemetry={"steps": "none"},
        **fields,  # type: ignore[arg-type]
    )
    (worker,) = config.worker_configs(run_id=new_run_id(), run_dir=str(tmp_path))
    path = tmp_path / "worker.json"
    write_worker_config(worker, path)
    result = run_worker(path)
    assert result.code == 0, result.stderr.decode()
    return [(e.length, e.terminated, e.truncated) for e in result.of(ev.Episode)]


def test_default_is_frozenlakes_registered_100_steps(tmp_path: Path) -> None:
    episodes = _lengths(tmp_path)
    assert len(episodes) == 60
    assert max(n for n, _, _ in episodes) == 100  # never longer than the registered limit
    truncated = [n for n, _, trunc in episodes if trunc]
    assert truncated  # some random walks run out of time...
    assert set(truncated) == {100}  # ...at exactly 100 steps
    assert any(term and n < 100 for n, term, _ in episodes)  # and some reach the goal


def test_an_explicit_limit_replaces_it(tmp_path: Path) -> None:
    episodes = _lengths(tmp_path, max_steps_per_episode=150)
    assert {n for n, _, trunc in episodes if trunc} == {150}
    assert any(100 < n < 150 for n, term, _ in episodes if term)


@pytest.mark.parametrize(
    ("agent", "through"),
    [
        # the one-call tabular episode steps below TimeLimit after the first episode...
        ("q_learning", [4.0, 0.0, 0.0, 0.0]),
        ("PlainQLearning", [4.0, 4.0, 4.0, 4.0]),  # ...the generic act/learn loop never
    ],
)
def test_the_limit_holds_below_time_limit_too(
    tmp_path: Path, agent: str, through: list[float]
) -> None:
    """``NbtLimitProbe`` never terminates and rewards a step that went through TimeLimit:
    every episode is still cut at its 4 steps, and truncated (envchain.time_limit_bypass)."""
    fields: dict[str, Any] = {"env_id": "worker_agents:NbtLimitProbe-v0", "episodes": 4}
    if agent != "q_learning":
        fields["agent"] = agent
    result = run_worker(make_config(tmp_path, max_steps_per_episode=4, **fields))
    assert result.code == 0, result.stderr
    batches = [e for e in result.wire if isinstance(e, ev.Episodes)]
    assert [n for e in batches for n in e.length] == [4, 4, 4, 4]
    assert [t for e in batches for t in e.truncated] == [True] * 4
    assert not any(t for e in batches for t in e.terminated)
    assert [r for e in batches for r in e.total_reward] == through
