"""Turning telemetry events into rows: Arrow tables for steps, tuples for episodes.

A ``Steps`` event is already column-major, so each column becomes one Arrow array built in C;
only ``extras`` and array-valued ``obs`` / ``action`` need a per-value JSON encode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import pyarrow as pa

from nbtrain.store.schema import EPISODE_COLUMNS, STEP_COLUMNS
from nbtrain.wire.events import Episode, Steps


def _enc_hook(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return tolist()
    raise NotImplementedError(f"cannot store {type(value).__name__} as JSON")


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)
_EMPTY = b"{}"


def to_json(value: Any) -> str:
    return _encoder.encode(value).decode()


def _json_array(values: Sequence[Any]) -> pa.Array:
    encode = _encoder.encode
    return pa.array([encode(v) for v in values], pa.binary()).cast(pa.string())


def value_array(values: Sequence[Any]) -> pa.Array:
    """obs/action column: ints stay INTEGER, floats REAL, anything else JSON text."""
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return _json_array(values)
    if pa.types.is_integer(arr.type):
        return arr.cast(pa.int64())
    if pa.types.is_floating(arr.type):
        return arr.cast(pa.float64())
    if pa.types.is_boolean(arr.type):
        return arr.cast(pa.int64())
    return _json_array(values)


def extras_array(values: Sequence[dict[str, Any] | None]) -> pa.Array:
    encode = _encoder.encode
    return pa.array([_EMPTY if v is None else encode(v) for v in values], pa.binary()).cast(
        pa.string()
    )


def steps_table(event: Steps, worker_id: str) -> pa.Table:
    """The rows of one ``Steps`` event, columns in table order."""
    n = len(event.step_index)
    lengths = {
        len(col)
        for col in (
            event.ep_index,
            event.action,
            event.reward,
            event.terminated,
            event.truncated,
            event.obs,
            event.extras,
            event.ts,
        )
    }
    if lengths != {n}:
        raise ValueError(f"Steps columns have different lengths {sorted(lengths | {n})}")
    columns = [
        pa.array([event.run_id] * n, pa.string()),
        pa.array([worker_id] * n, pa.string()),
        pa.array(event.ep_index, pa.int64()),
        pa.array(event.step_index, pa.int64()),
        value_array(event.action),
        pa.array(event.reward, pa.float64()),
        pa.array(event.terminated, pa.bool_()).cast(pa.int64()),
        pa.array(event.truncated, pa.bool_()).cast(pa.int64()),
        value_array(event.obs),
        extras_array(event.extras),
        pa.array(event.ts, pa.float64()),
    ]
    return pa.Table.from_arrays(columns, names=list(STEP_COLUMNS))


def table_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """Row tuples for the slow, row-by-row fallback path."""
    return list(zip(*(col.to_pylist() for col in table.columns), strict=True))


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


INSERT_EPISODE = (
    f"INSERT INTO episodes({', '.join(EPISODE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(EPISODE_COLUMNS))})"
)
INSERT_STEP = (
    f"INSERT INTO steps({', '.join(STEP_COLUMNS)}) VALUES ({', '.join('?' * len(STEP_COLUMNS))})"
)
