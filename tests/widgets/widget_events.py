"""Real wire events for feeding a RunLive in widget tests (fixed times, so output is stable)."""

from __future__ import annotations

from nbtrain.ids import format_episode_id
from nbtrain.live.hub import RunLive
from nbtrain.wire.events import Ended, Episode, Frame, GridMap, Progress, Started, Steps

RUN_ID = "01J0000000000000000000TEST"
LAKE = ["SFFF", "FHFH", "FFFH", "HFFG"]


def new_live(worker_ids: list[str], episodes: int = 100) -> RunLive:
    return RunLive(RUN_ID, worker_ids, env_id="FrozenLake-v1", episodes=episodes)


def started(wid: str, pid: int = 4242, episodes: int = 100) -> Started:
    return Started(
        run_id=RUN_ID,
        worker_id=wid,
        pid=pid,
        ts=1.0,
        digest="d" * 64,
        env_id="FrozenLake-v1",
        agent="q_learning",
        mode="train",
        episodes=episodes,
        start_episode=0,
    )


def episode(wid: str, ep: int, reward: float = 0.0, length: int = 5) -> Episode:
    return Episode(
        run_id=RUN_ID,
        worker_id=wid,
        ep_index=ep,
        episode_id=format_episode_id(RUN_ID, ep, wid),
        total_reward=reward,
        length=length,
        terminated=True,
        truncated=False,
        seed=ep,
        started_at=10.0 + ep,
        ended_at=10.5 + ep,
        extras={"epsilon": round(0.99**ep, 6)},
    )


def grid(wid: str, ep: int = 0) -> GridMap:
    return GridMap(run_id=RUN_ID, worker_id=wid, ep_index=ep, kind="frozenlake", rows=LAKE)


def steps(wid: str, ep: int, obs: list[int]) -> Steps:
    n = len(obs)
    return Steps(
        run_id=RUN_ID,
        worker_id=wid,
        ep_index=[ep] * n,
        step_index=list(range(n)),
        action=[1] * n,
        reward=[0.0] * n,
        terminated=[False] * n,
        truncated=[False] * n,
        obs=obs,
        extras=[None] * n,
        ts=[20.0] * n,
    )


def progress(wid: str, episodes_done: int, steps_done: int) -> Progress:
    return Progress(
        run_id=RUN_ID,
        worker_id=wid,
        ts=30.0,
        episodes_done=episodes_done,
        steps_done=steps_done,
        steps_per_s=1234.5,
        ep_index=episodes_done,
        epsilon=0.5,
    )


def ansi_frame(wid: str, ep: int, step: int) -> Frame:
    return Frame(
        run_id=RUN_ID,
        worker_id=wid,
        ep_index=ep,
        step_index=step,
        kind="ansi",
        text="\n\x1b[41mS\x1b[0mFFF\nFHFH\n",
    )


def rgb_frame(wid: str, ep: int, step: int, h: int = 4, w: int = 6) -> Frame:
    data = bytes((x * 40 + y * 10 + c) % 256 for y in range(h) for x in range(w) for c in range(3))
    return Frame(
        run_id=RUN_ID,
        worker_id=wid,
        ep_index=ep,
        step_index=step,
        kind="rgb_array",
        data=data,
        shape=[h, w, 3],
    )


def ended(
    wid: str,
    status: str = "completed",
    episodes_done: int = 0,
    steps_done: int = 0,
    error: str | None = None,
    traceback: str | None = None,
) -> Ended:
    return Ended(
        run_id=RUN_ID,
        worker_id=wid,
        status=status,
        ts=40.0,  # type: ignore[arg-type]
        episodes_done=episodes_done,
        steps_done=steps_done,
        error=error,
        traceback=traceback,
    )
