"""A learning curve that never shows a value no episode had.

Episodes go into buckets aligned on the episode index: at level ``L`` bucket ``k`` holds the
episodes ``k·2^L … (k+1)·2^L - 1``. Each bucket keeps the count, min, max and mean of the
returns (an envelope, drawn as such), the mean length, and the rolling mean of the last
:data:`ROLLING` *episodes* as it stood at the bucket's last episode. When the episode index
outgrows ``cap`` buckets, neighbours merge pairwise (level + 1), which is exact for all of
these. The level is a function of the largest episode index alone, so the live hub (fed one
episode at a time) and a curve rebuilt from the store (:func:`bucket_episodes`) give the
same buckets for the same episodes.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

ROLLING = 20
# About one bucket per pixel of a dashboard chart. Each dashboard tick sends the buckets
# changed since the last one, so at a given episode rate the bytes scale with this: 1,024
# was 5.7-6.0 % of Jupyter's 1 MB/s IOPub limit with 4 FrozenLake workers, 512 is 4.0 %
# (benchmarks/dashboard_traffic.py; goal < 5 %).
CURVE_BUCKETS = 512

FIELDS = ("index", "count", "last_ep", "r_min", "r_max", "r_mean", "roll", "len_mean")


def curve_level(max_ep: int, cap: int = CURVE_BUCKETS) -> int:
    """The smallest level at which episode indexes ``0 … max_ep`` fit in ``cap`` buckets."""
    if cap < 2:
        raise ValueError(f"a curve needs at least 2 buckets, got cap={cap}")
    level = 0
    while (max_ep >> level) >= cap:
        level += 1
    return level


class BucketCurve:
    """One worker's curve, fed one episode at a time (the hub's ingest thread).

    ``stamp`` counts changes; each bucket remembers the stamp of its last change so a
    reader can ask for just the buckets changed since it last looked (:meth:`since`).
    """

    def __init__(self, cap: int = CURVE_BUCKETS) -> None:
        self.cap = cap
        self.level = 0
        self.stamp = 0
        self._count: list[int] = []
        self._last: list[int] = []
        self._min: list[float] = []
        self._max: list[float] = []
        self._sum: list[float] = []
        self._len: list[float] = []
        self._roll: list[float] = []
        self._stamps: list[int] = []
        self._window: deque[float] = deque(maxlen=ROLLING)
        self._window_sum = 0.0  # of the window, recomputed after each batch (no drift)

    def add(self, ep_index: int, reward: float, length: int) -> None:
        self.add_many([ep_index], [reward], [length])

    def add_many(self, ep_index: list[int], reward: list[float], length: list[int]) -> None:
        """Episodes in arrival order, as many :meth:`add` calls would put them (sums and
        rolling means up to float rounding).

        A wire batch of one worker is a run of increasing indexes, so it is taken bucket by
        bucket with C-level ``sum``/``min``/``max`` over slices, not episode by episode: the
        per-episode loop was ~0.8 us of the kernel's ~15 us an episode (4 workers)."""
        n = len(ep_index)
        if n == 0:
            return
        window = self._window
        stamp0 = self.stamp
        # consecutive indexes (what a worker sends): a bucket's segment ends where it does
        start = ep_index[0]
        consecutive = ep_index == list(range(start, start + n))
        i = 0
        while i < n:
            # a segment: one bucket, indexes non-decreasing (anything else: one at a time)
            first = ep_index[i]
            # merge when the episode that needs it arrives, as one add() at a time does (it
            # matters for the NaN-keeping min/max); a segment never needs a merge inside it
            while (first >> self.level) >= self.cap:
                self._merge()
            level = self.level
            count, last, lo, hi = self._count, self._last, self._min, self._max
            sums, lens, roll, stamps = self._sum, self._len, self._roll, self._stamps
            k = first >> level
            if consecutive:
                j = min(n, i + ((k + 1) << level) - first)
                prev = ep_index[j - 1]
            else:
                j = i + 1
                prev = first
                while j < n:
                    ep = ep_index[j]
                    if ep < prev or ep >> level != k:
                        break
                    prev = ep
                    j += 1
            seg = reward[i:j]
            window.extend(seg)
            missing = k + 1 - len(count)
            if missing > 0:
                count += [0] * missing
                last += [-1] * missing
                stamps += [0] * missing
                for column in (lo, hi, sums, lens, roll):
                    column += [0.0] * missing
            if count[k] == 0:
                lo[k], hi[k] = min(seg), max(seg)
            else:
                # min(a, b) keeps a unless b < a: the order of arguments is the order of adds
                lo[k], hi[k] = min(lo[k], *seg), max(hi[k], *seg)
            count[k] += j - i
            sums[k] = sum(seg, sums[k])
            lens[k] = sum(length[i:j], lens[k])
            if prev >= last[k]:
                last[k] = prev
                roll[k] = sum(window) / len(window)
            stamps[k] = stamp0 + j
            i = j
        self.stamp = stamp0 + n
        self._window_sum = float(sum(window))

    def _merge(self) -> None:
        """Level + 1: buckets 2j and 2j+1 become bucket j. A merged bucket keeps the newer
        stamp of its parts: a view that holds both parts merges them itself (exactly), so
        only buckets changed since it last looked need to travel."""
        n = (len(self._count) + 1) // 2
        lists = (self._count, self._last, self._min, self._max, self._sum, self._len, self._roll)
        merged: list[list[Any]] = [[] for _ in lists]
        for j in range(n):
            parts = [i for i in (2 * j, 2 * j + 1) if i < len(self._count) and self._count[i]]
            if not parts:
                for out, default in zip(merged, (0, -1, 0.0, 0.0, 0.0, 0.0, 0.0), strict=True):
                    out.append(default)
                continue
            later = max(parts, key=lambda i: self._last[i])
            merged[0].append(sum(self._count[i] for i in parts))
            merged[1].append(self._last[later])
            merged[2].append(min(self._min[i] for i in parts))
            merged[3].append(max(self._max[i] for i in parts))
            merged[4].append(sum(self._sum[i] for i in parts))
            merged[5].append(sum(self._len[i] for i in parts))
            merged[6].append(self._roll[later])
        (
            self._count,
            self._last,
            self._min,
            self._max,
            self._sum,
            self._len,
            self._roll,
        ) = merged
        old = self._stamps
        self._stamps = [max(old[2 * j : 2 * j + 2]) for j in range(n)]
        self.level += 1

    def since(self, stamp: int) -> dict[str, np.ndarray]:
        """The non-empty buckets changed after ``stamp`` (0: all of them), as arrays."""
        keep = [k for k, s in enumerate(self._stamps) if s > stamp and self._count[k]]
        return self._arrays(keep)

    def _arrays(self, keep: list[int]) -> dict[str, np.ndarray]:
        count = np.asarray([self._count[k] for k in keep], dtype=np.int64)
        sums = np.asarray([self._sum[k] for k in keep], dtype=np.float64)
        lens = np.asarray([self._len[k] for k in keep], dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "index": np.asarray(keep, dtype=np.int64),
                "count": count,
                "last_ep": np.asarray([self._last[k] for k in keep], dtype=np.int64),
                "r_min": np.asarray([self._min[k] for k in keep], dtype=np.float64),
                "r_max": np.asarray([self._max[k] for k in keep], dtype=np.float64),
                "r_mean": sums / np.maximum(count, 1),
                "roll": np.asarray([self._roll[k] for k in keep], dtype=np.float64),
                "len_mean": lens / np.maximum(count, 1),
            }

    @property
    def last_roll(self) -> float | None:
        """The rolling mean at the newest episode (None before the first)."""
        return self._window_sum / len(self._window) if self._window else None


def rolling_mean(values: np.ndarray, window: int = ROLLING) -> np.ndarray:
    """Trailing mean over the last ``window`` values, shorter at the start (pandas'
    ``rolling(window, min_periods=1).mean()``)."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate(([0.0], values)))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    out: np.ndarray = (sums[idx] - sums[lo]) / (idx - lo)
    return out


def bucket_episodes(
    ep_index: np.ndarray,
    reward: np.ndarray,
    length: np.ndarray,
    cap: int = CURVE_BUCKETS,
) -> tuple[int, dict[str, np.ndarray]]:
    """``(level, arrays)`` for a worker's stored episodes: what a :class:`BucketCurve` fed
    with the same episodes in order holds."""
    order = np.argsort(ep_index, kind="stable")
    ep = np.asarray(ep_index, dtype=np.int64)[order]
    r = np.asarray(reward, dtype=np.float64)[order]
    ln = np.asarray(length, dtype=np.float64)[order]
    if len(ep) == 0:
        return 0, {name: np.zeros(0) for name in FIELDS}
    level = curve_level(int(ep[-1]), cap)
    roll = rolling_mean(r)
    keys = ep >> level
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    ends = np.concatenate((starts[1:], [len(ep)])) - 1
    count = np.diff(np.concatenate((starts, [len(ep)])))
    return level, {
        "index": keys[starts],
        "count": count.astype(np.int64),
        "last_ep": ep[ends],
        "r_min": np.minimum.reduceat(r, starts),
        "r_max": np.maximum.reduceat(r, starts),
        "r_mean": np.add.reduceat(r, starts) / count,
        "roll": roll[ends],
        "len_mean": np.add.reduceat(ln, starts) / count,
    }
