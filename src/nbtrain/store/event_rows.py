"""Telemetry events into the rows the store writer inserts.

This runs in the thread that submits the events (the ingest thread), so the writer's queue
holds compact chunk and episode rows rather than millions of short-lived Python objects
(those made the cyclic GC's full collections cost more than encoding them).

Steps re-sent for a worker (a step at or before the last one chunked through this writer)
are dropped and counted before they are chunked: the chunk key only covers a chunk's first
step, so SQL alone would not see an overlap. ``discard_unfinished_steps`` resets this
(:meth:`EventRows.forget`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

from nbtrain.ids import normalize_worker_id
from nbtrain.store.chunks_write import (
    check_order,
    chunk_rows,
    episode_row,
    episode_rows,
    td_chunk_rows,
)
from nbtrain.wire.events import Episode, Episodes, Event, StepRows, Steps

__all__ = ["EventRows", "Failed", "Prepared"]

Failed = Callable[[int, str, BaseException, Any, Any], None]
"""``failed(rows, what, exc, run_id, worker_id)``: count and log rows that are not stored."""


class Prepared(NamedTuple):
    chunks: list[tuple[Any, ...]]
    episodes: list[tuple[Any, ...]]
    steps: int
    first_episodes: bool
    """The episodes include the first ones of a worker: the writer commits them without
    lingering, so a new run's first episode is readable sooner (issue 13)."""


class EventRows:
    """Turns ``Steps`` and ``Episode(s)`` events into rows; remembers, per worker, the last
    step chunked. Callers serialize calls."""

    def __init__(self, failed: Failed) -> None:
        self._failed = failed
        # (run_id, worker_id) -> (ep_index, step_index) of the last step chunked.
        self._last: dict[tuple[str, str], tuple[int, int]] = {}
        self._wids: dict[str, str] = {}  # worker id as sent -> normalized
        self._with_episodes: set[tuple[str, str]] = set()  # (run_id, worker_id)

    def forget(self, run_id: str, worker_id: str) -> None:
        """Accept steps of ``worker_id`` from any point again (its unfinished ones are gone)."""
        self._last.pop((run_id, worker_id), None)

    def prepare(self, events: Sequence[Event]) -> Prepared:
        """Chunk rows, episode rows and the number of steps for ``Steps`` (or ``StepRows``)
        and ``Episode(s)`` events (others are ignored); a malformed event is counted and
        logged here. Callers serialize calls (the re-sent check keeps state)."""
        chunks: list[tuple[Any, ...]] = []
        episodes: list[tuple[Any, ...]] = []
        first = False
        wids, seen = self._wids, self._with_episodes
        for event in events:
            is_steps = isinstance(event, Steps | StepRows)
            if not is_steps and not isinstance(event, Episodes | Episode):
                continue
            try:
                wid = wids.get(event.worker_id)
                if wid is None:
                    wid = normalize_worker_id(event.worker_id)
                    if len(wids) > 10_000:
                        wids.clear()
                    wids[event.worker_id] = wid
                if is_steps:
                    chunks.extend(self._chunks(event, wid))  # type: ignore[arg-type]
                elif isinstance(event, Episodes):
                    episodes.extend(episode_rows(event, wid))
                else:
                    episodes.append(episode_row(event, wid))  # type: ignore[arg-type]
                if not is_steps and (event.run_id, wid) not in seen:
                    if len(seen) > 10_000:  # bounded: a forgotten worker costs one commit
                        seen.clear()
                    seen.add((event.run_id, wid))
                    first = True
            except Exception as exc:
                n = len(event) if isinstance(event, Steps | StepRows | Episodes) else 1
                self._failed(n, f"{type(event).__name__} event", exc, event.run_id, None)
        steps = 0
        for row in chunks:
            steps += row[4]
        return Prepared(chunks, episodes, steps, first)

    def _chunks(self, event: Steps | StepRows, wid: str) -> list[tuple[Any, ...]]:
        if type(event) is StepRows:
            rows = event.rows
            ep, steps = list(map(_FIRST, rows)), list(map(_SECOND, rows))
        else:
            ep, steps = event.ep_index, event.step_index  # type: ignore[union-attr]
        if not steps:
            return []
        key = (event.run_id, wid)
        start = 0
        last = self._last.get(key)
        if last is not None and (ep[0], steps[0]) <= last:
            check_order(ep, steps)  # _after bisects: only an ordered event can be cut
            start = _after(ep, steps, last)
            self._failed(start, "steps (already stored)",
                         ValueError(f"step {last} or an earlier one sent again"), *key)  # fmt: skip
        if type(event) is StepRows:
            chunked = td_chunk_rows(event, wid, ep, steps, start)
        else:
            chunked = chunk_rows(event, wid, start)  # type: ignore[arg-type]
        if chunked:
            self._last[key] = (ep[-1], steps[-1])
        return chunked


_FIRST, _SECOND = itemgetter(0), itemgetter(1)  # a TdRow's ep_index and step_index


def _after(ep: list[int], steps: list[int], last: tuple[int, int]) -> int:
    """Index of the first row whose ``(ep_index, step_index)`` comes after ``last``."""
    i = bisect_left(ep, last[0])
    j = bisect_right(ep, last[0], i)
    return bisect_right(steps, last[1], i, j) if i < j else i
