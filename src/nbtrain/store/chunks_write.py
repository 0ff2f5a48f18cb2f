"""Turning telemetry events into rows to write: chunk rows for steps, tuples for episodes.

A ``Steps`` event becomes one ``step_chunks`` row per episode it touches. Its ``ep_index``
column is non-decreasing (the worker emits steps in order), so episode boundaries are found
with ``bisect`` and each chunk is one ``msgspec`` encode call over zipped columns: no Python
code runs per step on this path.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import repeat
from typing import Any

import msgspec

from nbtrain.store.schema import CHUNK_COLUMNS, EPISODE_COLUMNS
from nbtrain.wire.codec import to_builtins_hook
from nbtrain.wire.events import Episode, Episodes, Steps

ChunkRow = tuple[Any, ...]  # (run_id, worker_id, ep_index, first_step, n_steps, rows)


# numpy values in configs and extras become plain numbers and lists (the wire's own hook).
_encoder = msgspec.json.Encoder(enc_hook=to_builtins_hook)


def to_json(value: Any) -> str:
    return _encoder.encode(value).decode()


class BadSteps(ValueError):
    """A ``Steps`` event that cannot be stored as it is (the writer counts and logs it)."""


def chunk_rows(event: Steps, worker_id: str, start: int = 0) -> list[ChunkRow]:
    """The ``step_chunks`` rows of ``event`` from row ``start`` on, one per episode.

    Checks what chunking relies on, at C speed: equal column lengths, ``ep_index``
    non-decreasing and ``step_index`` non-decreasing within each episode. Raises
    :class:`BadSteps` otherwise (the whole event is refused: its order is unknown).
    """
    ep = event.ep_index
    steps = event.step_index
    n = len(steps)
    columns = (steps, ep, event.action, event.reward, event.terminated, event.truncated,
               event.obs, event.extras, event.ts)  # fmt: skip
    lengths = set(map(len, columns))
    if len(lengths) != 1:
        raise BadSteps(f"Steps columns have different lengths {sorted(lengths)}")
    if sorted(ep) != ep:
        raise BadSteps("Steps ep_index is not non-decreasing")
    extras: list[Any] = event.extras
    if None in extras:  # stored as {} (the agent returned nothing)
        extras = [{} if x is None else x for x in extras]
    rows = list(
        zip(
            steps,
            event.action,
            event.reward,
            event.terminated,
            event.truncated,
            event.obs,
            extras,
            event.ts,
            strict=True,
        )
    )
    run_id = event.run_id
    encode = _encoder.encode
    out: list[ChunkRow] = []
    a = start
    while a < n:
        index = ep[a]
        b = n if ep[-1] == index else bisect_right(ep, index, a)
        part = steps[a:b]
        if sorted(part) != part:
            raise BadSteps(f"Steps step_index is not increasing in episode {index}")
        out.append((run_id, worker_id, index, steps[a], b - a, encode(rows[a:b]).decode()))
        a = b
    return out


def episode_row(event: Episode, worker_id: str) -> tuple[Any, ...]:
    return (
        event.run_id,
        worker_id,
        event.ep_index,
        event.episode_id,
        float(event.total_reward),
        event.length,
        int(event.terminated),
        int(event.truncated),
        event.seed,
        event.started_at,
        event.ended_at,
        to_json(event.extras or {}),
    )


def episode_rows(event: Episodes, worker_id: str) -> list[tuple[Any, ...]]:
    """The ``episodes`` rows of a batch (columns of unequal length raise ``ValueError``)."""
    n = len(event.ep_index)
    encode = _encoder.encode
    extras = [encode(x).decode() if x else "{}" for x in event.extras]
    return list(
        zip(
            repeat(event.run_id, n),
            repeat(worker_id, n),
            event.ep_index,
            event.episode_ids(),
            event.total_reward,
            event.length,
            event.terminated,
            event.truncated,
            event.seed,
            event.started_at,
            event.ended_at,
            extras,
            strict=True,
        )
    )


INSERT_EPISODE = (
    f"INSERT INTO episodes({', '.join(EPISODE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(EPISODE_COLUMNS))})"
)
INSERT_CHUNK = (
    f"INSERT INTO step_chunks({', '.join(CHUNK_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(CHUNK_COLUMNS))})"
)
