"""Turning telemetry events into rows to write: chunk rows for steps, tuples for episodes.

A ``Steps`` event becomes ``step_chunks`` rows of at most ~14 KB of JSON each, in one of two
layouts, by the event's mean steps per episode:

* short episodes (FrozenLake: ~6 steps): chunks span episodes, each step row ends with its
  ``ep_index`` and the chunk names its last episode (``last_ep``). A chunk per episode cost
  the kernel a B-tree insert per episode, more than encoding a short episode's steps;
* long episodes: a chunk holds one episode (``last_ep`` NULL, rows without ``ep_index``),
  as chunks did before schema version 4. The insert per episode is small next to its
  steps, and reading such chunks back needs no per-step episode column.

The checks and the encoding run at C speed over whole columns; Python code runs once per
chunk, and once per place where ``step_index`` does not increase (an episode boundary, for
a well-behaved worker).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from itertools import compress, repeat
from operator import ge
from typing import Any

import msgspec

from nbtrain.store.schema import CHUNK_COLUMNS, EPISODE_COLUMNS
from nbtrain.wire.codec import to_builtins_hook
from nbtrain.wire.events import Episode, Episodes, Steps

# (run_id, worker_id, ep_index, first_step, n_steps, last_ep, rows)
ChunkRow = tuple[Any, ...]


# numpy values in configs and extras become plain numbers and lists (the wire's own hook).
_encoder = msgspec.json.Encoder(enc_hook=to_builtins_hook)


def to_json(value: Any) -> str:
    return _encoder.encode(value).decode()


# A chunk's JSON stays below SQLite's largest in-page payload (~16 KB with the 64 KiB pages
# of new files): a larger one spills into overflow pages, each a whole page filled in part
# (1,024 FrozenLake steps in one chunk made the file 15 % larger). Pieces are sized from the
# bytes per step of the piece before; the first is a guess.
CHUNK_BYTES = 14_000
_FIRST_PIECE = 128
# Events with at least this many steps per episode (on average) get a chunk per episode.
LONG_EPISODE = 32


class BadSteps(ValueError):
    """A ``Steps`` event that cannot be stored as it is (the writer counts and logs it)."""


def chunk_rows(event: Steps, worker_id: str, start: int = 0) -> list[ChunkRow]:
    """The ``step_chunks`` rows of ``event`` from row ``start`` on (see the module's
    docstring for the two layouts).

    Checks what readers rely on: equal column lengths and ``(ep_index, step_index)``
    strictly increasing, so that no step is stored twice and rows come back in order.
    Raises :class:`BadSteps` otherwise (the whole event is refused: its order is unknown).
    """
    extras = event.extras
    if event.extras_columns is not None:
        if extras:
            raise BadSteps("Steps has both extras and extras_columns")
        extras = _extras_from_columns(event.extras_columns, len(event.step_index))
    columns: tuple[list[Any], ...] = (
        event.step_index, event.ep_index, event.action, event.reward, event.terminated,
        event.truncated, event.obs, extras, event.ts,
    )  # fmt: skip
    lengths = set(map(len, columns))
    if len(lengths) != 1:
        raise BadSteps(f"Steps columns have different lengths {sorted(lengths)}")
    if start:
        columns = tuple(column[start:] for column in columns)
    steps, ep, action, reward, terminated, truncated, obs, extras, ts = columns
    if not steps:
        return []
    _check_order(ep, steps)
    if None in extras:  # stored as {} (the agent returned nothing)
        extras = [{} if x is None else x for x in extras]
    n, run_id, out = len(steps), event.run_id, []
    if n >= LONG_EPISODE * (ep[-1] - ep[0] + 1):
        rows = list(zip(steps, action, reward, terminated, truncated, obs, extras, ts, strict=True))
        a, size = 0, _FIRST_PIECE
        while a < n:  # a chunk per episode, in pieces when it is long
            index = ep[a]
            b = n if ep[-1] == index else bisect_right(ep, index, a)

            def one(i: int, j: int, text: str, index: int = index) -> None:
                out.append((run_id, worker_id, index, steps[i], j - i, None, text))

            size = _pieces(rows, a, b, size, one)
            a = b
    else:
        rows = list(
            zip(steps, action, reward, terminated, truncated, obs, extras, ts, ep, strict=True)
        )

        def spanning(i: int, j: int, text: str) -> None:
            out.append((run_id, worker_id, ep[i], steps[i], j - i, ep[j - 1], text))

        _pieces(rows, 0, n, _FIRST_PIECE, spanning)
    return out


def _pieces(
    rows: list[tuple[Any, ...]], a: int, b: int, size: int, emit: Callable[[int, int, str], None]
) -> int:
    """Encode ``rows[a:b]`` in pieces of about ``CHUNK_BYTES``, each sized from the bytes
    per row of the piece before (``size`` rows for the first); return the next size."""
    encode = _encoder.encode
    while a < b:
        c = min(b, a + size)
        text = encode(rows[a:c])
        emit(a, c, text.decode())
        size = max(1, CHUNK_BYTES * (c - a) // max(1, len(text)))
        a = c
    return size


def _extras_from_columns(columns: dict[str, list[Any]], n: int) -> list[Any]:
    """Each step's extras, from ``Steps.extras_columns``: one small struct per step that
    encodes as the dict would (the keys in order), made at C speed."""
    for key, values in columns.items():
        if len(values) != n:
            raise BadSteps(f"Steps extras column {key!r} has {len(values)} values for {n} steps")
    if not columns:
        return [_EMPTY] * n
    keys = tuple(columns)
    made = _extras_type(keys)
    if made is None:
        rows = zip(*columns.values(), strict=True)  # lengths checked above
        return [dict(zip(keys, values, strict=True)) for values in rows]
    return list(map(made, *columns.values()))


_EMPTY: dict[str, Any] = {}
_extras_types: dict[tuple[str, ...], type[msgspec.Struct] | None] = {}


def _extras_type(keys: tuple[str, ...]) -> type[msgspec.Struct] | None:
    """A struct type whose fields encode under ``keys`` (fields ``f0``, ``f1``... renamed),
    or None for keys msgspec does not take as names (control characters, quotes)."""
    if keys in _extras_types:
        return _extras_types[keys]
    if len(_extras_types) >= 64:  # keys come from workers: keep the cache bounded
        _extras_types.clear()
    names = [f"f{i}" for i in range(len(keys))]
    made: type[msgspec.Struct] | None
    try:
        made = msgspec.defstruct(
            "StepExtras",
            [(name, Any) for name in names],
            rename=dict(zip(names, keys, strict=True)),
            gc=False,
        )
    except ValueError:
        made = None
    _extras_types[keys] = made
    return made


def _check_order(ep: list[int], steps: list[int]) -> None:
    """Raise :class:`BadSteps` unless ``(ep, steps)`` pairs strictly increase."""
    if sorted(ep) != ep:
        raise BadSteps("Steps ep_index is not non-decreasing")
    # Where step_index does not increase, a new episode must start.
    for i in compress(range(len(steps) - 1), map(ge, steps, steps[1:])):
        if ep[i] == ep[i + 1]:
            raise BadSteps(f"Steps step_index is not increasing in episode {ep[i]}")


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
