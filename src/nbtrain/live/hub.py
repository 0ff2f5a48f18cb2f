"""Kernel-side live state per ``(run_id, worker_id)``, for dashboards.

The ingest thread applies every event here; dashboards poll at their own pace. Memory is
bounded whatever the run length: recent episodes sit in a ring, the learning curve is a
:class:`~nbtrain.live.curve.BucketCurve` (at most ``CURVE_BUCKETS`` envelopes, with the
rolling mean over episodes computed here, once), and steps are never kept, only the latest
position/frame. The hub holds runs weakly: a run's live state goes when its ``Run``, its
session and its dashboards are gone.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nbtrain.live.curve import BucketCurve
from nbtrain.log_codes import LOG_UI_DASHBOARD_CALLBACK_ERROR
from nbtrain.logs import log
from nbtrain.statuses import FINAL_STATUSES
from nbtrain.wire.events import (
    Artifact,
    Ended,
    Episode,
    Episodes,
    Event,
    Frame,
    GridMap,
    Progress,
    Started,
    StepRows,
    Steps,
    extras_epsilon,
)

RECENT_EPISODES = 200


@dataclass
class WorkerLive:
    """What a dashboard shows for one worker; read it under :attr:`RunLive.lock`."""

    worker_id: str
    episodes_total: int = 0
    status: str = "pending"
    pid: int | None = None
    exit_code: int | None = None
    error: str | None = None
    traceback: str | None = None
    episodes_done: int = 0
    steps_done: int = 0
    steps_per_s: float = 0.0
    epsilon: float | None = None
    ep_index: int = 0
    grid: GridMap | None = None
    position: int | None = None
    frame: Frame | None = None
    frame_seq: int = 0
    policy_path: str | None = None
    # The process's start and end as the database has them (spawn and reap, from the
    # dispatcher); before the dispatcher says, the worker's own Started/Ended times.
    started_at: float | None = None
    ended_at: float | None = None
    # When the worker's loop began (its Started event): what steps_per_s is averaged over.
    running_since: float | None = None
    # True once the dispatcher has seen the process end (or never ran it in this session):
    # a worker's own `failed` event arrives before its exit code does.
    settled: bool = False
    curve: BucketCurve = field(default_factory=BucketCurve)
    # Dicts of plain values: CPython never tracks them in the cyclic GC, so they do not push
    # the kernel into full collections (an Episode struct each did: 170-230 ms pauses of the
    # notebook under load, benchmarks/kernel_latency.py).
    _recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_EPISODES))
    # Batches not yet made into those rows, with the first index worth a row: rows and ids
    # cost 0.4 us an episode, half the hub's work, and most would be pushed out unread.
    _unread: deque[tuple[Episodes, int]] = field(default_factory=deque)
    _unread_count: int = 0
    _return_sum: float = 0.0
    _return_count: int = 0

    def _add_episode(self, event: Episode) -> None:
        self._read_unread()  # the rows stay in the order their episodes came
        self.curve.add(event.ep_index, float(event.total_reward), event.length)
        self._return_sum += float(event.total_reward)
        self._return_count += 1
        self._recent.append(
            _recent_row(
                event.ep_index,
                event.episode_id,
                event.total_reward,
                event.length,
                event.terminated,
                event.truncated,
                event.ended_at,
            )
        )
        self._ended(event.ep_index, event.extras)

    def _add_episodes(self, event: Episodes) -> None:
        try:
            event.check_columns()
        except ValueError:
            return  # malformed: the store counts and logs it
        rewards = event.total_reward
        self.curve.add_many(event.ep_index, rewards, event.length)
        self._return_sum += float(sum(rewards))
        self._return_count += len(rewards)
        # Only the episodes a view can still ask for become rows, once one asks.
        tail = max(len(event) - RECENT_EPISODES, 0)
        if tail < len(event):
            unread = self._unread
            unread.append((event, tail))
            self._unread_count += len(event) - tail
            while self._unread_count - (len(unread[0][0]) - unread[0][1]) >= RECENT_EPISODES:
                first, first_tail = unread.popleft()  # all of it would be pushed out
                self._unread_count -= len(first) - first_tail
        if event.ep_index:
            self._ended(max(event.ep_index), event.last_extras())

    def _read_unread(self) -> None:
        """Make the unread batches' rows (under the run's lock, as every read is)."""
        for event, tail in self._unread:
            self._recent.extend(
                map(
                    _recent_row,
                    event.ep_index[tail:],
                    event.episode_ids(tail),
                    event.total_reward[tail:],
                    event.length[tail:],
                    event.terminated[tail:],
                    event.truncated[tail:],
                    event.ended_at[tail:],
                )
            )
        self._unread.clear()
        self._unread_count = 0

    def _ended(self, last_ep: int, extras: object) -> None:
        """After episodes up to ``last_ep``: the count, and ε from the last one's extras."""
        self.episodes_done = max(self.episodes_done, last_ep + 1)
        eps = extras_epsilon(extras)
        if eps is not None:
            self.epsilon = eps

    @property
    def mean_return(self) -> float | None:
        """Mean return over every episode this kernel saw (as ``summary()``'s)."""
        return self._return_sum / self._return_count if self._return_count else None

    @property
    def last100_return(self) -> float | None:
        """Mean return of the last 100 episodes (as ``summary()``'s ``last100_return``)."""
        self._read_unread()
        last = list(self._recent)[-100:]
        return sum(r["total_reward"] for r in last) / len(last) if last else None

    @property
    def last20_return(self) -> float | None:
        """The rolling mean of the last 20 episodes, as the curve's last point shows it."""
        return self.curve.last_roll

    def recent_episodes(self, n: int = 20) -> list[dict[str, Any]]:
        if n <= 0:
            return []
        self._read_unread()
        return list(self._recent)[-n:]


def _recent_row(
    ep_index: int,
    episode_id: str,
    total_reward: float,
    length: int,
    terminated: bool,
    truncated: bool,
    ended_at: float,
) -> dict[str, Any]:
    return {
        "ep_index": ep_index,
        "episode_id": episode_id,
        "total_reward": total_reward,
        "length": length,
        "terminated": terminated,
        "truncated": truncated,
        "ended_at": ended_at,
    }


class RunLive:
    """Live state of one run in this kernel. ``version`` bumps on every change."""

    def __init__(
        self, run_id: str, worker_ids: list[str], *, env_id: str = "", episodes: int = 0
    ) -> None:
        self.run_id = run_id
        self.env_id = env_id
        self.worker_ids = list(worker_ids)
        self.workers = {wid: WorkerLive(wid, episodes_total=episodes) for wid in worker_ids}
        self.version = 0
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)
        self._start_listeners: list[weakref.WeakMethod[Callable[[], None]]] = []

    def on_worker_start(self, callback: Callable[[], None]) -> None:
        """Call the bound method ``callback`` whenever a worker (re)starts, e.g. so a
        dashboard whose updates ended with the run resumes them after ``Run.restart``. Held
        weakly: a closed, collected dashboard is dropped."""
        with self.lock:
            self._start_listeners.append(weakref.WeakMethod(callback))

    def _bump(self) -> None:
        self.version += 1
        self._changed.notify_all()

    def wait_for_change(self, version: int, timeout: float | None = None) -> int:
        """Block until ``self.version != version`` (or the timeout); return the version."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != version, timeout)
            return self.version

    def apply(self, event: Event) -> None:
        with self.lock:
            worker = self.workers.get(event.worker_id)
            if worker is None:
                return
            _apply(worker, event)
            self._bump()

    def apply_many(self, events: list[Event]) -> None:
        with self.lock:
            for event in events:
                worker = self.workers.get(event.worker_id)
                if worker is not None:
                    _apply(worker, event)
            self._bump()

    def set_process(
        self,
        worker_id: str,
        *,
        status: str | None = None,
        pid: int | None = None,
        exit_code: int | None = None,
        error: str | None = None,
        traceback: str | None = None,
        started_at: float | None = None,
        ended_at: float | None = None,
    ) -> None:
        """What the dispatcher learns from the OS (start, exit) rather than from events;
        ``started_at``/``ended_at`` are the spawn and reap times the database records, so a
        run lasts as long live as it does read back."""
        with self.lock:
            worker = self.workers[worker_id]
            if started_at is not None:
                worker.started_at, worker.ended_at = started_at, None
            if ended_at is not None:
                worker.ended_at = ended_at
            if status is not None:
                worker.status = status
                worker.settled = status in FINAL_STATUSES
            if pid is not None:
                worker.pid = pid
            if exit_code is not None:
                worker.exit_code = exit_code
            if error is not None:
                worker.error = error
            if traceback is not None:
                worker.traceback = traceback
            self._bump()
            listeners = [ref() for ref in self._start_listeners] if status == "running" else []
            self._start_listeners = [ref for ref in self._start_listeners if ref() is not None]
        for listener in listeners:
            if listener is None:
                continue
            try:
                listener()
            except Exception:  # a broken dashboard must not stop a worker from starting
                log(
                    logging.ERROR,
                    LOG_UI_DASHBOARD_CALLBACK_ERROR,
                    "worker start listener failed",
                    run_id=self.run_id,
                    exc_info=True,
                )

    def add_worker(self, worker_id: str, episodes: int) -> None:
        with self.lock:
            if worker_id not in self.workers:
                self.workers[worker_id] = WorkerLive(worker_id, episodes_total=episodes)
                self.worker_ids.append(worker_id)
            self._bump()


def _apply(worker: WorkerLive, event: Event) -> None:
    if type(event) is StepRows:  # a built-in tabular agent's steps, the most frequent event
        if event.rows:
            worker.steps_done += len(event.rows)
            last = event.rows[-1]
            worker.ep_index = last[0]
            if worker.grid is not None and isinstance(last[6], int):
                worker.position = last[6]
    elif isinstance(event, Steps):
        if len(event):
            worker.steps_done += len(event)
            worker.ep_index = event.ep_index[-1]
            last_obs = event.obs[-1]
            if worker.grid is not None and isinstance(last_obs, int):
                worker.position = last_obs
    elif isinstance(event, Episodes):
        worker._add_episodes(event)
    elif isinstance(event, Episode):
        worker._add_episode(event)
    elif isinstance(event, Progress):
        worker.steps_done = event.steps_done
        worker.episodes_done = event.episodes_done
        worker.steps_per_s = event.steps_per_s
        worker.ep_index = event.ep_index
        if event.epsilon is not None:
            worker.epsilon = event.epsilon
    elif isinstance(event, GridMap):
        worker.grid = event
    elif isinstance(event, Frame):
        worker.frame = event
        worker.frame_seq += 1
        if event.position is not None:
            worker.position = event.position
    elif isinstance(event, Started):
        worker.status = "running"
        worker.pid = event.pid
        worker.ep_index = event.start_episode
        worker.episodes_done = max(worker.episodes_done, event.start_episode)
        worker.episodes_total = event.episodes
        worker.running_since = event.ts
        if worker.started_at is None or worker.ended_at is not None:  # no spawn time (yet)
            worker.started_at = event.ts
        worker.ended_at = None
    elif isinstance(event, Ended):
        worker.status = event.status
        worker.steps_done = max(worker.steps_done, event.steps_done)
        worker.episodes_done = max(worker.episodes_done, event.episodes_done)
        worker.error = event.error
        worker.traceback = event.traceback
        if worker.ended_at is None:  # the reap time, when the dispatcher has it, wins
            worker.ended_at = event.ts
        since = worker.running_since
        if since is not None and event.ts > since:
            # what a finished worker did on average, not its last 1-second rate (or 0)
            worker.steps_per_s = worker.steps_done / (event.ts - since)
    elif isinstance(event, Artifact):
        worker.policy_path = event.path


class LiveHub:
    """Registry of live runs in this process, held weakly: whoever shows or controls a run
    (its session, ``Run``, dashboards) keeps its live state alive, and nothing else does."""

    def __init__(self) -> None:
        self._runs: weakref.WeakValueDictionary[str, RunLive] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def register(self, live: RunLive) -> RunLive:
        with self._lock:
            self._runs[live.run_id] = live
        return live

    def get(self, run_id: str) -> RunLive | None:
        with self._lock:
            return self._runs.get(run_id)

    def discard(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def run_ids(self) -> list[str]:
        """Runs whose live state is still held by someone."""
        with self._lock:
            return list(self._runs.keys())


_HUB = LiveHub()


def get_hub() -> LiveHub:
    return _HUB
