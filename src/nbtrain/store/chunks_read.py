"""Reading ``step_chunks`` rows back into step columns (the fast read path of ``steps()``).

Each chunk is one JSON array of ``[step_index, action, reward, terminated, truncated, obs,
extras, ts, ep_index]`` rows when it spans episodes, or of the same rows without
``ep_index`` when it holds one episode (``last_ep`` NULL; see
:mod:`nbtrain.store.chunks_write`). A chunk is decoded with one typed ``msgspec`` call
(extras as ``msgspec.Raw``, so no dicts are built) and transposed with ``zip(*rows)``; the
columns become numpy arrays once, at the end. Per-row values never go through SQLite's JSON
functions, which is what makes this several times faster than the ``steps`` view.
:func:`episode_chunks` finds the chunks that hold given episodes with key lookups only.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from itertools import repeat
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa

from nbtrain.log_codes import LOG_SERVICE_SQLITE_DESERIALIZATION_FAILED
from nbtrain.logs import log
from nbtrain.store.frames import value_column
from nbtrain.store.schema import CHUNK_FIELDS

_Row = tuple[Any, Any, Any, Any, Any, Any, msgspec.Raw, Any, int]
_LegacyRow = tuple[Any, Any, Any, Any, Any, Any, msgspec.Raw, Any]
_decode = msgspec.json.Decoder(list[_Row]).decode
_decode_legacy = msgspec.json.Decoder(list[_LegacyRow]).decode
_EP = len(CHUNK_FIELDS) - 1  # each row's episode: the last field
_NULL = msgspec.Raw(b"null")
_INT32_MAX = 2**31 - 1


class ChunkColumns:
    """Step columns gathered from chunks, in the order the chunks were given."""

    def __init__(self) -> None:
        self.workers: list[str] = []  # per chunk, with its number of rows kept
        self.counts: list[int] = []
        self.fields: list[list[Any]] = [[] for _ in CHUNK_FIELDS[:_EP]]
        # ep_index as (value, count) runs: a chunk of one episode adds one run
        self.ep_values: list[int] = []
        self.ep_counts: list[int] = []
        self.bad_chunks = 0
        self.first_error: str | None = None

    def add(
        self,
        records: Iterable[tuple[str, int, int | None, str | bytes]],
        episodes: Collection[int] | None = None,
    ) -> None:
        """Decode ``(worker_id, ep_index, last_ep, rows)`` records, keeping only the steps
        of ``episodes`` when given; a chunk that cannot be decoded is skipped (counted in
        ``bad_chunks``) rather than failing the whole read."""
        fields = self.fields
        workers, counts = self.workers, self.counts
        for worker_id, ep_index, last_ep, text in records:
            legacy = last_ep is None  # one episode, rows without their ep_index
            if legacy and episodes is not None and ep_index not in episodes:
                continue
            try:
                rows: list[Any] = (_decode_legacy if legacy else _decode)(text)
            except (msgspec.DecodeError, TypeError) as exc:
                self.bad_chunks += 1
                self.first_error = self.first_error or f"{worker_id}/{ep_index}: {exc}"
                continue
            if episodes is not None and not legacy:
                rows = [row for row in rows if row[_EP] in episodes]
            if not rows:
                continue
            columns = zip(*rows, strict=True)
            for column, values in zip(fields, columns, strict=False):  # not the episode
                column.extend(values)
            if legacy:  # the episode column as runs: one value for the whole chunk
                self.ep_values.append(ep_index)
                self.ep_counts.append(len(rows))
            else:
                self.ep_values.extend(next(columns))
                self.ep_counts.extend(repeat(1, len(rows)))
            workers.append(worker_id)
            counts.append(len(rows))

    def __len__(self) -> int:
        return len(self.fields[0])

    def log_failures(self, run_id: str) -> None:
        if self.bad_chunks:
            log(
                logging.WARNING,
                LOG_SERVICE_SQLITE_DESERIALIZATION_FAILED,
                "skipped %d stored step chunk(s) that cannot be decoded (first: %s)",
                self.bad_chunks,
                self.first_error,
                run_id=run_id,
            )

    def column(self, name: str) -> Any:
        """One step column with its DataFrame dtype (see docs/store.md)."""
        if name == "worker_id":
            cats = sorted(set(self.workers))
            code = {w: i for i, w in enumerate(cats)}
            codes = np.repeat(np.array([code[w] for w in self.workers], dtype="int32"),
                              self.counts)  # fmt: skip
            return pd.Categorical.from_codes(codes, categories=pd.Index(cats, dtype="str"))
        if name == "ep_index":
            return np.repeat(np.array(self.ep_values, dtype="int64"), self.ep_counts)
        values = self.fields[CHUNK_FIELDS.index(name)]
        if name == "step_index":
            return _numbers(values, "int64")
        if name == "reward":
            return _numbers(values, "float64")
        if name in ("terminated", "truncated"):
            return np.array([bool(v) for v in values] if None in values else values, dtype=bool)
        if name == "ts":
            seconds = _numbers(values, "float64")
            return pd.to_datetime(seconds, unit="s", utc=True).as_unit("ns")
        if name == "extras":
            return _texts(values)
        return value_column(values)


# Requested episodes closer than this are read with one range scan (the episodes between
# them are decoded and dropped) rather than with two lookups.
RANGE_GAP = 32


def episode_chunks(
    conn: sqlite3.Connection, run_id: str, workers: list[str] | None, indexes: list[int]
) -> Iterator[tuple[Any, ...]]:
    """``(worker_id, ep_index, last_ep, rows)`` of the chunks holding steps of ``indexes``,
    in key order, each once. A chunk spans episodes ``ep_index..last_ep``, so each range of
    episodes starts its scan at the last chunk that begins before it."""
    if workers is None:
        workers = _chunk_workers(conn, run_id)
    ranges: list[list[int]] = []
    for index in sorted(set(indexes)):
        if ranges and index - ranges[-1][1] <= RANGE_GAP:
            ranges[-1][1] = index
        else:
            ranges.append([index, index])
    key = "run_id = ? AND worker_id = ?"
    for worker_id in sorted(set(workers)):
        last: tuple[int, int] | None = None  # key of the last chunk yielded
        for lo, hi in ranges:
            start = conn.execute(
                f"SELECT MAX(ep_index) FROM step_chunks WHERE {key} AND ep_index < ?",
                (run_id, worker_id, lo),
            ).fetchone()[0]
            records = conn.execute(
                f"SELECT worker_id, ep_index, first_step, last_ep, rows FROM step_chunks "
                f"WHERE {key} AND ep_index BETWEEN ? AND ? ORDER BY ep_index, first_step",
                (run_id, worker_id, lo if start is None else start, hi),
            )
            for wid, ep_index, first_step, last_ep, rows in records:
                if last is not None and (ep_index, first_step) <= last:
                    continue  # read already for the previous range
                last = (ep_index, first_step)
                yield wid, ep_index, last_ep, rows


def _chunk_workers(conn: sqlite3.Connection, run_id: str) -> list[str]:
    """The workers with chunks in the run, one key lookup each (``SELECT DISTINCT`` would
    read every chunk of the run)."""
    found: list[str] = []
    sql = "SELECT MIN(worker_id) FROM step_chunks WHERE run_id = ? AND worker_id > ?"
    while (row := conn.execute(sql, (run_id, found[-1] if found else "")).fetchone())[0]:
        found.append(str(row[0]))
    return found


def _numbers(values: list[Any], dtype: str) -> np.ndarray[Any, Any]:
    try:
        return np.array(values, dtype=dtype)
    except (TypeError, ValueError):  # NULLs (or junk) in hand-written chunks
        fill = np.nan if dtype == "float64" else 0
        return np.array([v if isinstance(v, int | float) else fill for v in values], dtype=dtype)


def _texts(raws: list[msgspec.Raw]) -> Any:
    """Raw JSON values as a pandas ``str`` array, built from one joined buffer (JSON null
    becomes a missing value)."""
    n = len(raws)
    lengths = np.fromiter(map(len, raws), dtype="int64", count=n)
    offsets = np.zeros(n + 1, dtype="int64")
    np.cumsum(lengths, out=offsets[1:])
    nulls = [i for i in np.flatnonzero(lengths == 4).tolist() if raws[i] == _NULL]
    if nulls or offsets[-1] > _INT32_MAX:
        texts: list[str | None] = [bytes(r).decode() for r in raws]
        for i in nulls:
            texts[i] = None
        return pd.array(texts, dtype="str")
    data = b"".join(raws)
    array = pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.astype("int32")), pa.py_buffer(data)
    )
    return pd.array(array, dtype="str")
