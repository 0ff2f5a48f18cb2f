"""The live hub: bounded memory, curve cursors, events applied per worker."""

from __future__ import annotations

import gc
import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbtrain.ids import format_episode_id, new_run_id
from nbtrain.live import hub as hub_module
from nbtrain.live.curve import BucketCurve
from nbtrain.live.hub import RunLive, get_hub
from nbtrain.wire.events import (
    Ended,
    Episode,
    Episodes,
    Frame,
    GridMap,
    Progress,
    Started,
    StepRows,
    Steps,
)

RUN = new_run_id()


def episode(worker_id: str, ep: int, reward: float = 1.0, eps: float | None = None) -> Episode:
    return Episode(
        run_id=RUN,
        worker_id=worker_id,
        ep_index=ep,
        episode_id=format_episode_id(RUN, ep, worker_id),
        total_reward=reward,
        length=ep + 1,
        terminated=True,
        truncated=False,
        seed=ep,
        started_at=0.0,
        ended_at=1.0,
        extras={} if eps is None else {"epsilon": eps},
    )


def steps(worker_id: str, ep: int, obs: list[int]) -> Steps:
    n = len(obs)
    return Steps(
        run_id=RUN,
        worker_id=worker_id,
        ep_index=[ep] * n,
        step_index=list(range(n)),
        action=[0] * n,
        reward=[0.0] * n,
        terminated=[False] * n,
        truncated=[False] * n,
        obs=obs,
        extras=[None] * n,
        ts=[0.0] * n,
    )


def test_events_update_only_their_worker() -> None:
    live = RunLive(RUN, ["000001", "000007"], env_id="FrozenLake-v1", episodes=10)
    live.apply(
        Started(
            run_id=RUN,
            worker_id="000007",
            pid=42,
            ts=0.0,
            digest="d",
            env_id="FrozenLake-v1",
            agent="q_learning",
            mode="train",
            episodes=10,
            start_episode=0,
        )
    )
    live.apply_many([episode("000007", 0, 2.0, eps=0.5), episode("000007", 1, 4.0)])
    w1, w7 = live.workers["000001"], live.workers["000007"]
    assert (w7.status, w7.pid, w7.episodes_done, w7.epsilon) == ("running", 42, 2, 0.5)
    assert (w1.status, w1.pid, w1.episodes_done) == ("pending", None, 0)
    assert [e["total_reward"] for e in w7.recent_episodes(5)] == [2.0, 4.0]
    assert w7.recent_episodes(0) == []


def test_unknown_worker_events_are_ignored() -> None:
    live = RunLive(RUN, ["000001"])
    version = live.version
    live.apply(episode("000099", 0))
    assert live.workers["000001"].episodes_done == 0
    assert "000099" not in live.workers
    assert live.version == version


def test_grid_position_follows_steps_and_frames() -> None:
    live = RunLive(RUN, ["000001"])
    live.apply(steps("000001", 0, [3, 4]))
    assert live.workers["000001"].position is None  # no grid known yet
    live.apply(
        GridMap(run_id=RUN, worker_id="000001", ep_index=0, kind="frozenlake", rows=["SF", "FG"])
    )
    live.apply(steps("000001", 0, [1, 2]))
    w = live.workers["000001"]
    assert (w.position, w.steps_done, w.ep_index) == (2, 4, 0)
    live.apply(
        Frame(run_id=RUN, worker_id="000001", ep_index=0, step_index=5, kind="grid", position=3)
    )
    assert (w.position, w.frame_seq) == (3, 1)


def test_step_rows_count_and_move_the_position_as_steps_do() -> None:
    """The kernel hands a tabular agent's ``StepRows`` to the hub as they came off the wire."""
    live = RunLive(RUN, ["000001"])
    w = live.workers["000001"]

    def rows(ep: int, obs: list[int]) -> StepRows:
        return StepRows(run_id=RUN, worker_id="000001", rows=[
            (ep, t, 1, 0.0, False, False, o, 0.5, 0.0, 1.0) for t, o in enumerate(obs)
        ])  # fmt: skip

    live.apply(rows(0, [3, 4]))
    assert (w.position, w.steps_done, w.ep_index) == (None, 2, 0)  # no grid known yet
    live.apply(
        GridMap(run_id=RUN, worker_id="000001", ep_index=0, kind="frozenlake", rows=["SF", "FG"])
    )
    live.apply_many([rows(1, [1, 2, 3]), rows(2, [])])
    assert (w.position, w.steps_done, w.ep_index) == (3, 5, 1)


def test_progress_and_ended() -> None:
    live = RunLive(RUN, ["000001"])
    live.apply(
        Progress(
            run_id=RUN,
            worker_id="000001",
            ts=1.0,
            episodes_done=3,
            steps_done=30,
            steps_per_s=1234.0,
            ep_index=3,
            epsilon=0.2,
        )
    )
    live.apply(
        Ended(
            run_id=RUN,
            worker_id="000001",
            status="failed",
            ts=2.0,
            episodes_done=3,
            steps_done=31,
            error="boom",
            traceback="Traceback...",
        )
    )
    w = live.workers["000001"]
    assert (w.steps_per_s, w.epsilon, w.status, w.error) == (1234.0, 0.2, "failed", "boom")
    assert w.steps_done == 31


def test_curve_stamps_give_only_changed_buckets() -> None:
    live = RunLive(RUN, ["000001"])
    w = live.workers["000001"]
    live.apply_many([episode("000001", i, float(i)) for i in range(3)])
    arrays = w.curve.since(0)
    np.testing.assert_array_equal(arrays["r_mean"], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(arrays["roll"], [0.0, 0.5, 1.0])
    stamp = w.curve.stamp
    live.apply(episode("000001", 3, 3.0))
    np.testing.assert_array_equal(w.curve.since(stamp)["index"], [3])
    assert len(w.curve.since(w.curve.stamp)["index"]) == 0
    assert w.mean_return == 1.5
    assert w.last100_return == 1.5
    assert w.last20_return == 1.5


def test_curve_memory_is_bounded_and_every_episode_still_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live = RunLive(RUN, ["000001"])
    w = live.workers["000001"]
    w.curve = BucketCurve(cap=100)
    for i in range(1000):
        live.apply(episode("000001", i, float(i)))
    arrays = w.curve.since(0)
    assert len(arrays["index"]) <= 100
    assert w.curve.level == 4  # 1000 episodes in buckets of 16
    assert int(arrays["count"].sum()) == 1000  # merged, never dropped
    assert arrays["r_min"][0] == 0
    assert arrays["r_max"][-1] == 999
    assert arrays["last_ep"][-1] == 999
    assert arrays["roll"][-1] == pytest.approx(np.mean(np.arange(980, 1000)))
    assert len(w.recent_episodes(10_000)) == hub_module.RECENT_EPISODES


def test_a_finished_worker_reports_its_average_rate_not_zero() -> None:
    live = RunLive(RUN, ["000001"])
    common = {"run_id": RUN, "worker_id": "000001"}
    live.apply(
        Started(
            **common, pid=1, ts=1.0, digest="d", env_id="FrozenLake-v1", agent="q_learning",
            mode="train", episodes=10, start_episode=0,
        )
    )  # fmt: skip
    live.apply(Ended(**common, status="completed", ts=3.0, episodes_done=10, steps_done=400))
    w = live.workers["000001"]
    assert (w.started_at, w.ended_at) == (1.0, 3.0)
    assert w.steps_per_s == 200.0


def test_wait_for_change_wakes_on_apply() -> None:
    live = RunLive(RUN, ["000001"])
    version = live.version
    timer = threading.Timer(0.05, live.apply, args=(episode("000001", 0),))
    timer.start()
    assert live.wait_for_change(version, timeout=10) == version + 1
    timer.join()
    assert live.wait_for_change(live.version, timeout=0.01) == live.version


def test_hub_registry() -> None:
    hub = get_hub()
    live = hub.register(RunLive(RUN, ["000001"]))
    assert hub.get(RUN) is live
    hub.discard(RUN)
    assert hub.get(RUN) is None


def test_hub_holds_runs_weakly() -> None:
    """Issue 14 item 5: a run nobody shows or controls any more leaves the hub."""
    hub = get_hub()
    run_id = new_run_id()
    live = hub.register(RunLive(run_id, ["000001"]))
    live.apply_many([episode("000001", i, 1.0) for i in range(50)])
    assert run_id in hub.run_ids()
    del live
    gc.collect()
    assert hub.get(run_id) is None
    assert run_id not in hub.run_ids()


def test_worker_start_listeners_are_called_and_held_weakly() -> None:
    live = RunLive(new_run_id(), ["000001"])

    class Listener:
        calls = 0

        def wake(self) -> None:
            Listener.calls += 1

    kept, dropped = Listener(), Listener()
    live.on_worker_start(kept.wake)
    live.on_worker_start(dropped.wake)
    del dropped
    live.set_process("000001", status="failed", exit_code=1)
    assert Listener.calls == 0  # only a (re)start wakes listeners
    live.set_process("000001", status="running", pid=1)
    assert Listener.calls == 1  # the collected listener is gone
    assert len(live._start_listeners) == 1


def test_a_bool_is_not_an_epsilon() -> None:
    """The hub and the worker's heartbeat read ε with one rule (wire.events.extras_epsilon)."""
    from nbtrain.ids import new_run_id
    from nbtrain.live.hub import RunLive
    from nbtrain.wire.events import Episode

    run = new_run_id()
    live = RunLive(run, ["000001"])
    common: dict[str, Any] = {
        "run_id": run, "worker_id": "000001", "total_reward": 1.0, "length": 1,
        "terminated": True, "truncated": False, "seed": 1, "started_at": 1.0, "ended_at": 2.0,
    }  # fmt: skip
    live.apply(Episode(**common, ep_index=0, episode_id="a", extras={"epsilon": 0.25}))
    live.apply(Episode(**common, ep_index=1, episode_id="b", extras={"epsilon": True}))
    assert live.workers["000001"].epsilon == 0.25
    assert live.workers["000001"].episodes_done == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 450), st.booleans()), max_size=12))
def test_recent_rows_are_made_when_read_and_equal_those_made_at_once(
    batches: list[tuple[int, bool]],
) -> None:
    """Episodes batches become recent rows only when a view reads them; whatever the
    batch sizes, single episodes between them and reads in between, the rows are the last
    RECENT_EPISODES episodes in order, and the batches held unread stay bounded."""
    live = RunLive(RUN, ["000001"])
    w = live.workers["000001"]
    seen: list[float] = []
    ep = 0
    for size, read in batches:
        rewards = [float(ep + i) for i in range(size)]
        live.apply(
            Episodes(run_id=RUN, worker_id="000001", ep_index=list(range(ep, ep + size)),
                     total_reward=rewards, length=[1] * size, terminated=[True] * size,
                     truncated=[False] * size, seed=[0] * size, started_at=[0.0] * size,
                     ended_at=[1.0] * size, extras=[{}] * size)
        )  # fmt: skip
        seen += rewards
        ep += size
        if size % 3 == 0:
            live.apply(episode("000001", ep, float(ep)))
            seen.append(float(ep))
            ep += 1
        held = sum(len(batch) - tail for batch, tail in w._unread)
        assert held < 2 * hub_module.RECENT_EPISODES
        if read:
            assert [r["total_reward"] for r in w.recent_episodes(5)] == seen[-5:]
    rows = w.recent_episodes(10_000)
    assert [r["total_reward"] for r in rows] == seen[-hub_module.RECENT_EPISODES :]
    assert [r["episode_id"] for r in rows] == [
        format_episode_id(RUN, int(r["ep_index"]), "000001") for r in rows
    ]
    last = seen[-100:]
    assert w.last100_return == (pytest.approx(sum(last) / len(last)) if last else None)
