"""Warm actors: an actor whose worker ended normally hosts the next worker (no new Ray
process per launch); one whose worker failed, or that cannot start the next, is never
reused; kept actors end after ``keep_warm`` seconds."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nbtrain.dispatch.ray_pool import ActorPool
from tests.kit.backends import Launch, config, worker_rows
from tests.kit.processes import pid_alive, wait_gone


def pid_of(db: Path, run_id: str, worker_id: str = "000001") -> int:
    return int(worker_rows(db, run_id)[worker_id]["pid"])


@pytest.mark.slow
def test_a_warm_actor_hosts_the_next_worker(launch: Launch, db: Path, ray_cluster: Any) -> None:
    from nbtrain.dispatch.ray_backend import RayBackend

    backend = RayBackend(keep_warm=60)
    first = launch(config(agent="backend_agents:WhereAmI", workers=["a"]), db=db, backend=backend)
    assert first.wait(timeout=120) == {"a": "completed"}
    second = launch(config(agent="backend_agents:WhereAmI", workers=["b"], episodes=3), db=db,
                    backend=backend)  # fmt: skip
    assert second.wait(timeout=120) == {"b": "completed"}
    assert pid_of(db, second.run_id, "b") == pid_of(db, first.run_id, "a"), "same process"
    extras = {json.loads(e)["env_worker_id"] for e in second.steps()["extras"].astype(str)}
    assert extras == {"b"}, "the second worker sees its own WORKER_ID"
    assert len(second.episodes()) == 3


@pytest.mark.slow
def test_the_actor_of_a_failed_worker_is_not_kept(
    launch: Launch, db: Path, ray_cluster: Any
) -> None:
    run = launch(
        config(env_id="CliffWalking-v1", env_kwargs={}, agent="pipeline_agents:Raises",
               agent_kwargs={"fail_at": 3}, workers=1),
        db=db, backend="ray",
    )  # fmt: skip
    assert run.wait(timeout=120) == {"000001": "failed"}
    assert wait_gone(pid_of(db, run.run_id), 15)


@pytest.mark.slow
def test_without_keep_warm_each_actor_ends_with_its_worker(
    launch: Launch, db: Path, ray_cluster: Any
) -> None:
    from nbtrain.dispatch.ray_backend import RayBackend

    run = launch(config(workers=1), db=db, backend=RayBackend(keep_warm=0))
    assert run.wait(timeout=120) == {"000001": "completed"}
    assert wait_gone(pid_of(db, run.run_id), 15)


@pytest.mark.slow
def test_a_kept_actor_ends_after_keep_warm(launch: Launch, db: Path, ray_cluster: Any) -> None:
    from nbtrain.dispatch.ray_backend import RayBackend

    run = launch(config(workers=1), db=db, backend=RayBackend(keep_warm=5))
    assert run.wait(timeout=120) == {"000001": "completed"}
    pid = pid_of(db, run.run_id)
    assert pid_alive(pid), "kept for the next worker"
    assert wait_gone(pid, 30), "ended once keep_warm passed unused"


@pytest.mark.slow
def test_a_kept_actor_that_died_is_replaced(launch: Launch, db: Path, ray_cluster: Any) -> None:
    from nbtrain.dispatch.ray_backend import RayBackend
    from nbtrain.dispatch.ray_pool import POOL

    ray = ray_cluster
    backend = RayBackend(keep_warm=60)
    first = launch(config(workers=1), db=db, backend=backend)
    assert first.wait(timeout=120) == {"000001": "completed"}
    key = backend._pool_key()
    kept = POOL.take(key)
    assert kept is not None
    ray.kill(kept[0])  # dies while kept (a node lost, a kill from outside)
    POOL.give(key, kept, 60, backend._end_kept)
    assert wait_gone(pid_of(db, first.run_id), 15)
    second = launch(config(workers=1), db=db, backend=backend)
    assert second.wait(timeout=120) == {"000001": "completed"}
    assert pid_of(db, second.run_id) != pid_of(db, first.run_id)


# -- the pool itself, without Ray ------------------------------------------------------------


def test_the_pool_gives_back_the_most_recent_actor_for_the_same_key() -> None:
    pool, ended = ActorPool(), []
    pool.give("k", "old", 60, ended.append)
    pool.give("k", "new", 60, ended.append)
    pool.give("other", "x", 60, ended.append)
    assert pool.take("k") == "new"
    assert pool.take("k") == "old"
    assert pool.take("k") is None
    assert pool.idle("other") == 1
    pool.drain(ended.append)
    assert ended == ["x"]


def test_an_unused_actor_is_ended_after_keep_and_a_taken_one_never() -> None:
    pool = ActorPool()
    ended: list[Any] = []
    done = threading.Event()

    def end(actor: Any) -> None:
        ended.append(actor)
        done.set()

    pool.give("k", "taken", 0.05, end)
    assert pool.take("k") == "taken"
    pool.give("k", "idle", 0.05, end)
    assert done.wait(10)
    time.sleep(0.1)
    assert ended == ["idle"]
    assert pool.idle("k") == 0


def test_a_failing_end_does_not_stop_the_drain() -> None:
    pool, ended = ActorPool(), []

    def end(actor: Any) -> None:
        ended.append(actor)
        raise RuntimeError("Ray is shutting down")

    pool.give("k", "a", 60, end)
    pool.give("k", "b", 60, end)
    pool.drain(end)
    assert sorted(ended) == ["a", "b"]


def test_keep_warm_must_not_be_negative(ray_cluster: Any) -> None:
    from nbtrain.dispatch.ray_backend import RayBackend

    with pytest.raises(ValueError, match=r"keep_warm=-1 must be >= 0"):
        RayBackend(keep_warm=-1)


AGENT = """
class Versioned:
    def __init__(self, observation_space, action_space, seed=0):
        self.action_space = action_space
        self.action_space.seed(seed)

    def act(self, obs, explore=True):
        return self.action_space.sample()

    def learn(self, *args):
        return {"version": VERSION}
"""


@pytest.mark.slow
def test_an_edited_agent_module_is_imported_afresh(
    launch: Launch, db: Path, ray_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kept actor has the old module imported; a subprocess would import the new one,
    so the next worker gets a new actor."""
    from nbtrain.dispatch.ray_backend import RayBackend

    backend = RayBackend(keep_warm=60)
    module = db.parent / "edited_agent.py"  # in the run's working directory
    monkeypatch.syspath_prepend(str(db.parent))  # the kernel checks that it imports
    versions = []
    pids = []
    for version in (1, 1, 2):
        if not module.exists() or version == 2:
            module.write_text(f"VERSION = {version}\n" + AGENT)
            stamp = time.time() + version  # a new mtime even within one clock tick
            os.utime(module, (stamp, stamp))
        run = launch(config(agent="edited_agent:Versioned", workers=1, episodes=2), db=db,
                     backend=backend)  # fmt: skip
        assert run.wait(timeout=120) == {"000001": "completed"}
        versions.append({json.loads(e)["version"] for e in run.steps()["extras"].astype(str)})
        pids.append(pid_of(db, run.run_id))
    assert versions == [{1}, {1}, {2}]
    assert pids[0] == pids[1], "unchanged code: the warm actor is reused"
    assert pids[2] != pids[1], "edited code: a new actor imports it"


@pytest.mark.slow
def test_kept_actors_another_launch_cannot_use_give_their_cpus_back(
    launch: Launch, db: Path, ray_cluster: Any
) -> None:
    from nbtrain.dispatch.ray_backend import RayBackend

    first = launch(config(workers=1), db=db, backend=RayBackend(keep_warm=60))
    assert first.wait(timeout=120) == {"000001": "completed"}
    kept = pid_of(db, first.run_id)
    assert pid_alive(kept)
    # Both of the session's 2 CPUs: only there once the kept actor has let its CPU go.
    big = launch(config(workers=1), db=db, backend=RayBackend(num_cpus=2, keep_warm=0))
    assert wait_gone(kept, 15)
    assert big.wait(timeout=120) == {"000001": "completed"}
