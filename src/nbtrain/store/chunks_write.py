"""Turning telemetry events into rows to write: chunk rows for steps, tuples for episodes.

A ``Steps`` event becomes ``step_chunks`` rows in one of two layouts, by the event's mean
steps per episode:

* short episodes (FrozenLake: ~6 steps): chunks of about 8 KB of JSON span episodes, each
  step row ends with its ``ep_index`` and the chunk names its last episode (``last_ep``).
  A chunk per episode cost the kernel a B-tree insert per episode, more than encoding a
  short episode's steps;
* long episodes, or an event within one episode: a chunk holds an episode's steps in the
  event (``last_ep`` NULL, rows without ``ep_index``), as chunks did before schema version
  4. The insert per episode is small next to its steps, and reading such chunks back needs
  no per-step episode column.

The checks and the encoding run at C speed over whole columns; Python code runs once per
chunk, and once per place where ``step_index`` does not increase (an episode boundary, for
a well-behaved worker).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from itertools import compress, islice, repeat
from operator import ge, lt
from typing import Any

import msgspec

from nbtrain.store.schema import CHUNK_COLUMNS, EPISODE_COLUMNS
from nbtrain.wire.codec import to_builtins_hook
from nbtrain.wire.events import TD_EXTRAS, Episode, Episodes, StepRows, Steps, TdRow

# (run_id, worker_id, ep_index, first_step, n_steps, rows), and last_ep for a chunk that
# spans episodes: a one-episode chunk leaves last_ep out of its INSERT (NULL), which costs
# SQLite 0.4 us less a chunk than binding None.
ChunkRow = tuple[Any, ...]


# numpy values in configs and extras become plain numbers and lists (the wire's own hook).
_encoder = msgspec.json.Encoder(enc_hook=to_builtins_hook)


def to_json(value: Any) -> str:
    return _encoder.encode(value).decode()


# A chunk's JSON stays well below SQLite's largest in-page payload (~16 KB with the 64 KiB
# pages of new files): 1,024 FrozenLake steps in one chunk spilled into overflow pages and
# made the file 15 % larger than a chunk per episode; 14 KB chunks packed pages less well
# than 8 KB ones (117 vs 108 bytes a step for the chunks alone). Pieces are sized from the
# bytes per step of the piece before (across events: a hint, shared by writers).
CHUNK_BYTES = 8_000
_row_bytes = [100]
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
    extras: list[Any] = event.extras
    if event.extras_columns is not None:
        if extras:
            raise BadSteps("Steps has both extras and extras_columns")
        extras = _extras_from_columns(event)
    elif None in extras:  # stored as {} (the agent returned nothing)
        extras = [{} if x is None else x for x in extras]
    columns: tuple[list[Any], ...] = (
        event.step_index, event.ep_index, event.action, event.reward, event.terminated,
        event.truncated, event.obs, extras, event.ts,
    )  # fmt: skip
    lengths = set(map(len, columns))
    if len(lengths) != 1:
        raise BadSteps(f"Steps columns have different lengths {sorted(lengths)}")
    if columns[0]:
        check_order(columns[1], columns[0])  # the whole event, before any part is left out
    if start:
        columns = tuple(column[start:] for column in columns)
    steps, ep, action, reward, terminated, truncated, obs, extras, ts = columns
    if not steps:
        return []
    if _chunk_per_episode(ep, len(steps)):
        rows = list(zip(steps, action, reward, terminated, truncated, obs, extras, ts, strict=True))
        return _episode_chunks(event.run_id, worker_id, ep, steps, rows)
    spanning = list(
        zip(steps, action, reward, terminated, truncated, obs, extras, ts, ep, strict=True)
    )
    return _spanning_chunks(event.run_id, worker_id, ep, steps, spanning)


def td_chunk_rows(
    event: StepRows, worker_id: str, ep: list[int], steps: list[int], start: int = 0
) -> list[ChunkRow]:
    """What ``chunk_rows(event.to_steps(), worker_id, start)`` returns, byte for byte, built
    straight from the rows: no columns made only to be zipped back into rows (a third of
    the kernel's CPU for a FrozenLake step's row, before encoding). ``ep`` and ``steps`` are
    the rows' first two fields; msgspec has checked every row's fields as it decoded."""
    if steps:
        check_order(ep, steps)
    rows: list[TdRow] = event.rows
    if start:
        rows, ep, steps = rows[start:], ep[start:], steps[start:]
    if not rows:
        return []
    extras = _extras_type(TD_EXTRAS)
    if extras is None:  # pragma: no cover - the two names are plain identifiers
        raise BadSteps("no struct for the tabular extras")
    if _chunk_per_episode(ep, len(rows)):
        one = [(s, a, r, te, tr, o, extras(e, d), t) for _, s, a, r, te, tr, o, e, d, t in rows]
        return _episode_chunks(event.run_id, worker_id, ep, steps, one)
    spanning = [(s, a, r, te, tr, o, extras(e, d), t, i) for i, s, a, r, te, tr, o, e, d, t in rows]
    return _spanning_chunks(event.run_id, worker_id, ep, steps, spanning)


def _chunk_per_episode(ep: list[int], n: int) -> bool:
    """The layout of the module's docstring: a chunk per episode for one episode, or for
    long ones (on average); else chunks that span episodes."""
    return ep[0] == ep[-1] or n >= LONG_EPISODE * (ep[-1] - ep[0] + 1)


def _episode_chunks(
    run_id: str, worker_id: str, ep: list[int], steps: list[int], rows: list[Any]
) -> list[ChunkRow]:
    # A chunk per episode of the event, whatever its size: cut into pieces, the steps of
    # 1,000-step episodes cost more CPU and took more room (85 vs 79 bytes a step).
    encode, n = _encoder.encode, len(rows)
    if ep[0] == ep[-1]:
        return [(run_id, worker_id, ep[0], steps[0], n, encode(rows).decode())]
    out: list[ChunkRow] = []
    a = 0
    while a < n:
        index = ep[a]
        b = n if ep[-1] == index else bisect_right(ep, index, a)
        out.append((run_id, worker_id, index, steps[a], b - a, encode(rows[a:b]).decode()))
        a = b
    return out


def _spanning_chunks(
    run_id: str, worker_id: str, ep: list[int], steps: list[int], rows: list[Any]
) -> list[ChunkRow]:
    # Chunks of about CHUNK_BYTES, each sized from the bytes per step of the one before.
    encode, n = _encoder.encode, len(rows)
    out: list[ChunkRow] = []
    a, size = 0, max(1, CHUNK_BYTES // _row_bytes[0])
    while a < n:
        c = min(n, a + size)
        text = encode(rows[a:c])
        out.append((run_id, worker_id, ep[a], steps[a], c - a, text.decode(), ep[c - 1]))
        size = max(1, CHUNK_BYTES * (c - a) // len(text))
        a = c
    _row_bytes[0] = max(1, CHUNK_BYTES // size)
    return out


def _extras_from_columns(event: Steps) -> list[Any]:
    """Each step's extras, from ``Steps.extras_columns`` (see :func:`_row_structs`)."""
    try:
        event.check_extras_columns()
    except ValueError as exc:
        raise BadSteps(f"Steps {exc}") from exc
    return _row_structs(event.extras_columns or {}, event.step_extras)


def _row_structs(columns: dict[str, list[Any]], dicts: Callable[[], list[Any]]) -> list[Any]:
    """Row i of ``columns`` (checked: one value per row) as one small struct that encodes as
    its dict would (the keys in order), made at C speed; ``dicts()`` where there are no
    columns or a struct cannot take the keys."""
    made = _extras_type(tuple(columns)) if columns else None
    if made is None:
        return dicts()
    return list(map(made, *columns.values()))


_extras_types: dict[tuple[str, ...], type[msgspec.Struct] | None] = {}
_UNKNOWN = object()


def _extras_type(keys: tuple[str, ...]) -> type[msgspec.Struct] | None:
    """A struct type whose fields encode under ``keys`` (fields ``f0``, ``f1``... renamed),
    or None for keys msgspec does not take as names (control characters, quotes)."""
    found = _extras_types.get(keys, _UNKNOWN)
    if found is not _UNKNOWN:  # one lookup: another writer's thread may clear the cache
        return found  # type: ignore[return-value]
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


# Scalars whose equal values of one type encode alike (floats but for the sign of zero).
_SCALARS = frozenset({int, float, str, bool, type(None)})


def _constant_extras(columns: dict[str, list[Any]], n: int) -> list[str] | None:
    """Each episode's extras JSON when every column holds one scalar value throughout (a
    tabular agent's ε once it has decayed to its floor: most of a long run), encoded once
    for the batch instead of once an episode (0.13 us of the kernel's ~9 us an episode,
    replayed); None when they differ."""
    if not n or not columns:
        return None
    first = {key: values[0] for key, values in columns.items()}
    for key, values in columns.items():
        value = first[key]
        kind = type(value)
        if kind not in _SCALARS or (kind is float and value == 0.0):
            return None
        # count() compares with ==, which holds across types (1 == 1.0 == True)
        if values.count(value) != n or len(set(map(type, values))) != 1:
            return None
    return [to_json(first)] * n


def check_order(ep: list[int], steps: list[int]) -> None:
    """Raise :class:`BadSteps` unless the ``(ep, steps)`` pairs (not empty) strictly
    increase."""
    if sorted(ep) != ep:
        raise BadSteps("Steps ep_index is not non-decreasing")
    if ep[0] == ep[-1]:  # one episode: its steps increase
        if not all(map(lt, steps, islice(steps, 1, None))):
            raise BadSteps(f"Steps step_index is not increasing in episode {ep[0]}")
        return
    # Where step_index does not increase, a new episode must start.
    for i in compress(range(len(steps) - 1), map(ge, steps, islice(steps, 1, None))):
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
    given: list[Any] = event.extras
    extras: list[str] | None = None
    if event.extras_columns is not None:
        event.check_columns()
        extras = _constant_extras(event.extras_columns, n)
        if extras is None:
            given = _row_structs(event.extras_columns, event.episode_extras)
    if extras is None:
        extras = [encode(x).decode() if x else "{}" for x in given]
    # The flags as ints: sqlite3 binds an exact int at once but looks a bool up among its
    # adapters first (~170 ns a value: 0.35 us of the writer's ~4.5 us an episode).
    return list(
        zip(
            repeat(event.run_id, n),
            repeat(worker_id, n),
            event.ep_index,
            event.episode_ids(),
            event.total_reward,
            event.length,
            map(int, event.terminated),
            map(int, event.truncated),
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
    f"INSERT INTO step_chunks({', '.join(CHUNK_COLUMNS[:-1])}) "
    f"VALUES ({', '.join('?' * (len(CHUNK_COLUMNS) - 1))})"
)
INSERT_SPANNING_CHUNK = (
    f"INSERT INTO step_chunks({', '.join(CHUNK_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(CHUNK_COLUMNS))})"
)
