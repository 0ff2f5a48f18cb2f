"""Warm Ray actors kept between runs, so a launch does not wait for new Ray processes.

Ray never reuses an actor's process after the actor ends, and a new one costs an
interpreter, ``import ray`` and a registration with the raylet: 1-2 s on an idle 2-core
machine, several seconds on a loaded one, paid by every worker of every launch. A
:class:`~nbtrain.dispatch.ray_actor.WorkerActor` can host one worker after another, so
when its worker has ended normally the kernel keeps the actor here for ``keep`` seconds,
and the next worker with the same resource request starts in it at once (its modules
already imported). An actor whose worker failed, hung or was killed is never kept.

Kept actors still reserve their CPUs (Ray cannot tell idle from busy): ``keep`` bounds
how long; ``RayBackend(keep_warm=0)`` turns keeping off. They are owned by the kernel
like every actor it starts, so they end with it. This module does not import Ray.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable
from typing import Any

#: How long an idle actor is kept by default (seconds).
KEEP_WARM_S = 60.0


class _Kept:
    __slots__ = ("actor", "timer")

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.timer: threading.Timer | None = None


class ActorPool:
    """Idle actors by resource key (the Ray job, namespace and CPUs they were made for)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[Hashable, list[_Kept]] = {}

    def take(self, key: Hashable) -> Any | None:
        """An idle actor made for ``key`` (the most recently used), or None."""
        with self._lock:
            kept = self._idle.get(key)
            if not kept:
                return None
            entry = kept.pop()
        if entry.timer is not None:
            entry.timer.cancel()
        return entry.actor

    def give(self, key: Hashable, actor: Any, keep: float, end: Callable[[Any], None]) -> None:
        """Keep ``actor`` for ``keep`` seconds, then ``end`` it unless taken meanwhile."""
        entry = _Kept(actor)
        entry.timer = threading.Timer(keep, self._expire, args=(key, entry, end))
        entry.timer.daemon = True
        with self._lock:
            self._idle.setdefault(key, []).append(entry)
        entry.timer.start()

    def idle(self, key: Hashable) -> int:
        with self._lock:
            return len(self._idle.get(key, ()))

    def drain(self, end: Callable[[Any], None], *, unless: Hashable = None) -> None:
        """End every kept actor (the backend closes), or all but those made for ``unless``
        (a new actor is needed, and those cannot serve it)."""
        with self._lock:
            keys = [key for key in self._idle if unless is None or key != unless]
            entries = [entry for key in keys for entry in self._idle.pop(key)]
        for entry in entries:
            if entry.timer is not None:
                entry.timer.cancel()
            with contextlib.suppress(Exception):
                end(entry.actor)

    def _expire(self, key: Hashable, entry: _Kept, end: Callable[[Any], None]) -> None:
        with self._lock:
            kept = self._idle.get(key, [])
            if entry not in kept:
                return  # taken in the meantime
            kept.remove(entry)
        with contextlib.suppress(Exception):
            end(entry.actor)


#: One pool per kernel: ``backend="ray"`` makes a new RayBackend per launch.
POOL = ActorPool()
