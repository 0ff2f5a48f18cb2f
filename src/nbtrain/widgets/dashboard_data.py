"""What a dashboard sends: full snapshots and per-tick deltas, built from the live hub or
rebuilt from the store. Pure data; the widget decides when to send.

Curves travel as binary buffers of buckets (see :mod:`nbtrain.live.curve`): each bucket is
addressed by its index at the curve's ``level`` and carries its whole state (count, last
episode, min / max / mean return, the rolling mean over episodes at its last episode, mean
length), so applying it twice changes nothing. A delta carries the buckets changed since the
last one; at a higher level the view first merges its buckets pairwise, as the hub did. The
bucket cap bounds the bytes per tick whatever the episode rate, without ever averaging
episodes into a point that pretends to be one.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nbtrain.statuses import FINAL_STATUSES
from nbtrain.widgets._common import finite
from nbtrain.widgets.colours import worker_colours
from nbtrain.widgets.outcome import outcome_text

if TYPE_CHECKING:
    from nbtrain.live.hub import RunLive, WorkerLive
    from nbtrain.wire.events import Frame

SCALARS = (
    "status",
    "pid",
    "exit_code",
    "error",
    "traceback",
    "episodes_done",
    "episodes_total",
    "steps_done",
    "steps_per_s",
    "epsilon",
    "ep_index",
    "started_at",
    "ended_at",
    "mean_return",
    "last100_return",
    "last20_return",
)
RECENT = 20
RECENT_MIN_INTERVAL = 0.5  # a table cannot be read faster; it was half the bytes at 10 Hz
FRAME_MIN_INTERVAL = {"ansi": 0.1, "grid": 0.1, "rgb_array": 0.25}

# A bucket's index is last_ep >> level, so it does not travel. Returns and lengths as
# float32 (an episode's return is shown to 3 digits); the mean of 20 as float64, so it equals
# pandas' rolling mean to the last digit. 32 bytes a bucket.
_DTYPES = {
    "count": np.int32,
    "last_ep": np.int32,
    "r_min": np.float32,
    "r_max": np.float32,
    "r_mean": np.float32,
    "roll": np.float64,
    "len_mean": np.float32,
}
WIRE_FIELDS = tuple(_DTYPES)


@dataclass
class Packet:
    """A message under construction: JSON content plus the buffers it points at by index."""

    content: dict[str, Any]
    buffers: list[bytes] = field(default_factory=list)

    def add_buffer(self, data: bytes, dtype: str) -> dict[str, Any]:
        self.buffers.append(data)
        return {"buffer": len(self.buffers) - 1, "dtype": dtype}

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.buffers)


def encode_curve(
    packet: Packet, arrays: dict[str, np.ndarray], *, level: int, reset: bool
) -> dict[str, Any]:
    """Buckets as buffers; ``reset``: they replace what the view has (else: upsert)."""
    out: dict[str, Any] = {"level": level, "reset": reset, "n": len(arrays["index"])}
    for name, dtype in _DTYPES.items():
        data = np.ascontiguousarray(arrays[name], dtype=dtype).tobytes()
        out[name] = packet.add_buffer(data, np.dtype(dtype).name)
    return out


def png_rgb(data: bytes, shape: list[int]) -> bytes:
    """A PNG of raw RGB bytes (stdlib only): frames shrink ~50x before they cross the comm."""
    height, width = int(shape[0]), int(shape[1])
    row = width * 3
    if len(data) != height * row:
        raise ValueError(f"frame has {len(data)} bytes; shape {shape} needs {height * row}")
    raw = b"".join(b"\x00" + data[y * row : (y + 1) * row] for y in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + tag
            + body
            + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def encode_frame(packet: Packet, frame: Frame) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": frame.kind,
        "ep_index": frame.ep_index,
        "step_index": frame.step_index,
    }
    if frame.kind == "ansi":
        out["text"] = frame.text or ""
    elif frame.kind == "rgb_array" and frame.data is not None and frame.shape:
        out["png"] = packet.add_buffer(png_rgb(frame.data, frame.shape), "png")
        out["shape"] = list(frame.shape)
    if frame.position is not None:
        out["position"] = frame.position
    return out


def compact_recent(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Recent episodes as columns: the table needs four of them, and rows of dicts with ids
    and times were most of a busy dashboard's bytes. ``end``: 1 terminated, 2 truncated."""
    return {
        "ep_index": [int(r["ep_index"]) for r in rows],
        "total_reward": [finite(float(r["total_reward"])) for r in rows],
        "length": [int(r["length"]) for r in rows],
        "end": [1 if r["terminated"] else 2 if r["truncated"] else 0 for r in rows],
    }


def _scalars(worker: WorkerLive) -> dict[str, Any]:
    # NaN / inf as None: JSON-safe, and equal to itself when the next tick compares
    return {name: finite(getattr(worker, name)) for name in SCALARS}


def _grid(worker: WorkerLive) -> dict[str, Any] | None:
    grid = worker.grid
    return None if grid is None else {"kind": grid.kind, "rows": list(grid.rows)}


@dataclass
class _Sent:
    """What this dashboard last sent for one worker."""

    scalars: dict[str, Any] = field(default_factory=dict)
    curve_stamp: int = 0
    curve_level: int = -1
    last_recent: int = -1
    recent_time: float = -1e9
    grid: dict[str, Any] | None = None
    position: int | None = None
    frame_seq: int = 0
    frame_time: float = 0.0


class LiveTracker:
    """Builds deltas against what was last sent, and snapshots consistent with them.

    Call both with ``live.lock`` held so a snapshot equals the state after the last delta.
    """

    def __init__(self, live: RunLive) -> None:
        self.live = live
        self.seq = 0
        self.focused: dict[str, str | None] = {}
        self._sent: dict[str, _Sent] = {}
        self.outcome: str | None = None

    def _outcome(self) -> str | None:
        workers = self.live.workers
        return outcome_text(_scalars(workers[w]) for w in self.live.worker_ids)

    def _frame_wanted(self, worker_id: str, frame: Frame | None) -> bool:
        if frame is None:
            return False
        if frame.kind != "rgb_array":
            return True
        return worker_id in self.focused.values()

    def delta(self, now: float | None = None) -> Packet | None:
        now = time.monotonic() if now is None else now
        packet = Packet({"kind": "delta", "seq": self.seq + 1, "workers": {}})
        changes: dict[str, dict[str, Any]] = packet.content["workers"]
        for wid in self.live.worker_ids:
            worker = self.live.workers[wid]
            sent = self._sent.setdefault(wid, _Sent())
            change: dict[str, Any] = {}
            scalars = _scalars(worker)
            diff = {k: v for k, v in scalars.items() if sent.scalars.get(k, _MISSING) != v}
            if not sent.scalars:
                change["colour"] = worker_colours(self.live.worker_ids)[wid]
            if diff:
                change["scalars"] = diff
                sent.scalars = scalars
            self._curve_delta(packet, worker, sent, change)
            recent = [r for r in worker.recent_episodes(RECENT) if r["ep_index"] > sent.last_recent]
            due = now - sent.recent_time >= RECENT_MIN_INTERVAL or worker.status in FINAL_STATUSES
            if recent and due:
                sent.recent_time = now
                change["recent"] = compact_recent(recent)
                sent.last_recent = recent[-1]["ep_index"]
            grid = _grid(worker)
            if grid != sent.grid:
                change["grid"] = grid
                sent.grid = grid
            if worker.position != sent.position:
                change["position"] = worker.position
                sent.position = worker.position
            frame = worker.frame
            if (
                worker.frame_seq != sent.frame_seq
                and frame is not None
                and now - sent.frame_time >= FRAME_MIN_INTERVAL[frame.kind]
                and self._frame_wanted(wid, frame)
            ):
                change["frame"] = encode_frame(packet, frame)
                sent.frame_seq = worker.frame_seq
                sent.frame_time = now
            if change:
                changes[wid] = change
        outcome = self._outcome()
        if outcome != self.outcome:
            packet.content["outcome"] = self.outcome = outcome
        elif not changes:
            return None
        self.seq += 1
        return packet

    def _curve_delta(
        self, packet: Packet, worker: WorkerLive, sent: _Sent, change: dict[str, Any]
    ) -> None:
        curve = worker.curve
        if curve.stamp == sent.curve_stamp:
            return
        # a higher level than the view holds is no reason to resend everything: the view
        # merges what it has pairwise, exactly as the hub did (curves.js, Curve.apply)
        reset = sent.curve_stamp == 0 or curve.level < sent.curve_level
        arrays = curve.since(0 if reset else sent.curve_stamp)
        change["curve"] = encode_curve(packet, arrays, level=curve.level, reset=reset)
        sent.curve_stamp, sent.curve_level = curve.stamp, curve.level

    def snapshot(self) -> Packet:
        """Everything up to the last delta (``seq``); the curve as it is now (its buckets are
        idempotent, so deltas after this one may repeat some of them harmlessly)."""
        packet = Packet(
            {
                "kind": "snapshot",
                "seq": self.seq,
                "live": True,
                "run_id": self.live.run_id,
                "env_id": self.live.env_id,
                "worker_ids": list(self.live.worker_ids),
                "colours": worker_colours(self.live.worker_ids),
                "outcome": self.outcome,
                "workers": {},
            }
        )
        for wid in self.live.worker_ids:
            worker = self.live.workers[wid]
            sent = self._sent.get(wid, _Sent())
            state: dict[str, Any] = {"scalars": sent.scalars or _scalars(worker)}
            curve = worker.curve
            state["curve"] = encode_curve(packet, curve.since(0), level=curve.level, reset=True)
            recent = [
                r for r in worker.recent_episodes(RECENT) if r["ep_index"] <= sent.last_recent
            ]
            state["recent"] = compact_recent(recent)
            state["grid"] = sent.grid
            state["position"] = sent.position
            frame = worker.frame
            if sent.frame_seq and frame is not None:
                state["frame"] = encode_frame(packet, frame)
            packet.content["workers"][wid] = state
        return packet

    def all_final(self) -> bool:
        """Every worker has ended and its exit code is known (so the last delta carries it)."""
        workers = self.live.workers
        return all(workers[w].settled for w in self.live.worker_ids)


class _Missing:
    pass


_MISSING = _Missing()
