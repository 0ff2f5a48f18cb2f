"""``BucketCurve.add_many`` (the live hub's per-batch path) against a curve fed one episode
at a time, written out here as the reference: same buckets, counts, extremes, last
episodes, stamps and level; sums and rolling means equal up to float rounding."""

from __future__ import annotations

import itertools
import math
from collections import deque
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbtrain.live.curve import ROLLING, BucketCurve


class ReferenceCurve:
    """Buckets of ``2**level`` episodes, fed one episode at a time."""

    def __init__(self, cap: int) -> None:
        self.cap, self.level, self.stamp = cap, 0, 0
        self.buckets: dict[int, dict[str, Any]] = {}
        self.window: deque[float] = deque(maxlen=ROLLING)

    def add(self, ep: int, reward: float, length: int) -> None:
        self.window.append(reward)
        while (ep >> self.level) >= self.cap:
            self.level += 1
            merged: dict[int, dict[str, Any]] = {}
            for k, b in sorted(self.buckets.items()):
                m = merged.get(k // 2)
                if m is None:
                    merged[k // 2] = dict(b)
                    continue
                later = b if b["last"] >= m["last"] else m
                m.update(
                    count=m["count"] + b["count"], lo=min(m["lo"], b["lo"]),
                    hi=max(m["hi"], b["hi"]), sum=m["sum"] + b["sum"], len=m["len"] + b["len"],
                    last=later["last"], roll=later["roll"], stamp=max(m["stamp"], b["stamp"]),
                )  # fmt: skip
            self.buckets = merged
        self.stamp += 1
        b = self.buckets.setdefault(
            ep >> self.level,
            {"count": 0, "lo": reward, "hi": reward, "sum": 0.0, "len": 0.0, "last": -1},
        )
        b["count"] += 1
        b["lo"], b["hi"] = min(b["lo"], reward), max(b["hi"], reward)
        b["sum"] += reward
        b["len"] += length
        if ep >= b["last"]:
            b["last"] = ep
            b["roll"] = sum(self.window) / len(self.window)
        b["stamp"] = self.stamp


def _check(curve: BucketCurve, ref: ReferenceCurve) -> None:
    got = curve.since(0)
    keys = sorted(ref.buckets)
    assert curve.level == ref.level
    assert curve.stamp == ref.stamp
    assert got["index"].tolist() == keys
    exact = {"count": "count", "last_ep": "last", "r_min": "lo", "r_max": "hi"}
    for name, key in exact.items():  # NaN equals NaN here: min/max keep NaNs by arrival
        np.testing.assert_array_equal(got[name], [ref.buckets[k][key] for k in keys], name)
    counts = [ref.buckets[k]["count"] for k in keys]
    means = [ref.buckets[k]["sum"] / c for k, c in zip(keys, counts, strict=True)]
    np.testing.assert_allclose(got["r_mean"], means, rtol=1e-9, atol=1e-9)
    lens = [ref.buckets[k]["len"] / c for k, c in zip(keys, counts, strict=True)]
    np.testing.assert_allclose(got["len_mean"], lens, rtol=1e-12)
    np.testing.assert_allclose(got["roll"], [ref.buckets[k]["roll"] for k in keys], atol=1e-9)
    assert curve.since(ref.stamp).get("index").tolist() == []
    for k in keys:  # the stamps: a view asking since a bucket's change sees the newer ones
        newer = sorted(j for j in keys if ref.buckets[j]["stamp"] > ref.buckets[k]["stamp"])
        assert curve.since(ref.buckets[k]["stamp"])["index"].tolist() == newer
    expected_roll = sum(ref.window) / len(ref.window)
    assert curve.last_roll is not None
    if math.isnan(expected_roll):
        assert math.isnan(curve.last_roll)
    else:
        assert curve.last_roll == pytest.approx(expected_roll)


episodes = st.lists(
    st.tuples(
        st.integers(0, 300),
        # NaN returns too: where merges happen decides which min/max a NaN bucket keeps
        st.floats(-1e6, 1e6, allow_nan=False) | st.just(math.nan),
        st.integers(1, 100),
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(
    cap=st.integers(2, 9),
    increasing=st.booleans(),
    items=episodes,
    cuts=st.lists(st.integers(0, 120), max_size=6),
)
def test_batches_hold_what_one_episode_at_a_time_holds(
    cap: int, increasing: bool, items: list[tuple[int, float, int]], cuts: list[int]
) -> None:
    if increasing:  # what a worker sends: indexes 0, 1, 2, ...
        items = [(i, r, n) for i, (_, r, n) in enumerate(items)]
    ref = ReferenceCurve(cap)
    for ep, reward, length in items:
        ref.add(ep, reward, length)
    curve = BucketCurve(cap=cap)
    bounds = sorted({0, len(items), *(c for c in cuts if c < len(items))})
    for a, b in itertools.pairwise(bounds):
        part = items[a:b]
        curve.add_many([p[0] for p in part], [p[1] for p in part], [p[2] for p in part])
    _check(curve, ref)


def test_an_empty_batch_changes_nothing() -> None:
    curve = BucketCurve(cap=4)
    curve.add_many([], [], [])
    assert curve.stamp == 0
    assert curve.last_roll is None


def test_nan_returns_keep_the_order_of_one_at_a_time() -> None:
    # min/max with a NaN depend on argument order; a batch must keep the arrival order
    rewards = [2.0, math.nan, 1.0, 7.0, math.nan, 5.0, 3.0, math.nan]
    ref = ReferenceCurve(cap=2)  # 8 episodes: buckets of 4, so NaNs meet numbers in one
    for ep, reward in enumerate(rewards):
        ref.add(ep, reward, 1)
    curve = BucketCurve(cap=2)
    curve.add_many(list(range(8)), rewards, [1] * 8)
    got = curve.since(0)
    assert curve.level == ref.level == 2
    keys = sorted(ref.buckets)
    np.testing.assert_array_equal(got["r_min"], [ref.buckets[k]["lo"] for k in keys])
    np.testing.assert_array_equal(got["r_max"], [ref.buckets[k]["hi"] for k in keys])
    # min(2.0, nan) keeps 2.0, then 1.0 is smaller; a bucket that starts with NaN stays NaN
    assert got["r_min"].tolist()[0] == 1.0
    assert got["r_max"].tolist()[0] == 7.0
    assert math.isnan(got["r_min"].tolist()[1])
