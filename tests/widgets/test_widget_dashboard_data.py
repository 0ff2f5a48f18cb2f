"""Snapshots and deltas built from a real RunLive fed with real wire events."""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from widget_events import (
    ansi_frame,
    ended,
    episode,
    grid,
    new_live,
    progress,
    rgb_frame,
    started,
    steps,
)

from nbtrain.live import curve as curve_module
from nbtrain.live.curve import ROLLING, bucket_episodes
from nbtrain.widgets.colours import worker_colour
from nbtrain.widgets.dashboard_data import WIRE_FIELDS, LiveTracker, png_rgb
from nbtrain.widgets.dashboard_store import store_snapshot

CLOCK = itertools.count(start=1000.0, step=1.0)  # ticks a second apart unless a test says


def _curve(packet, wid):  # type: ignore[no-untyped-def]
    ref = packet.content["workers"][wid]["curve"]
    arrays = {
        name: np.frombuffer(packet.buffers[ref[name]["buffer"]], dtype=ref[name]["dtype"])
        for name in WIRE_FIELDS
    }
    arrays["index"] = arrays["last_ep"] >> ref["level"]  # not sent: the view derives it
    return ref, arrays


def test_deltas_carry_only_what_changed_and_nothing_when_idle() -> None:
    live = new_live(["000001", "000002"])
    tracker = LiveTracker(live)
    first = tracker.delta(now=next(CLOCK))  # initial scalars of both workers, and colours
    assert first is not None
    assert first.content["workers"]["000002"]["colour"] == worker_colour("000002")
    assert tracker.delta(now=next(CLOCK)) is None
    live.apply(started("000001"))
    live.apply_many([episode("000001", i, reward=i) for i in range(5)])
    packet = tracker.delta(now=next(CLOCK))
    assert packet is not None
    assert set(packet.content["workers"]) == {"000001"}
    change = packet.content["workers"]["000001"]
    assert change["scalars"]["status"] == "running"
    assert change["scalars"]["pid"] == 4242
    ref, arrays = _curve(packet, "000001")
    assert (ref["level"], ref["reset"]) == (0, True)
    assert arrays["r_mean"].tolist() == [0, 1, 2, 3, 4]
    assert arrays["roll"].tolist() == [0, 0.5, 1, 1.5, 2]
    assert change["recent"]["ep_index"] == [0, 1, 2, 3, 4]
    live.apply(episode("000001", 5, reward=9))
    packet = tracker.delta(now=next(CLOCK))
    assert packet is not None
    assert "colour" not in packet.content["workers"]["000001"]
    ref, arrays = _curve(packet, "000001")
    assert (ref["level"], ref["reset"]) == (0, False)
    assert arrays["index"].tolist() == [5]  # never the whole history again
    assert arrays["last_ep"].tolist() == [5]
    assert packet.content["workers"]["000001"]["recent"]["ep_index"] == [5]
    assert packet.content["seq"] == 3


def test_a_burst_of_episodes_is_never_averaged_into_fake_episodes() -> None:
    """Regression (issue 15): 1000 episodes in one tick became 16 "episodes" whose returns
    were averages (0.737 on FrozenLake), and the "mean of 20" then spanned ~1000 episodes.
    (500 here: below the 512-bucket cap every episode is its own point.)"""
    live = new_live(["000001"])
    tracker = LiveTracker(live)
    tracker.delta(now=next(CLOCK))
    returns = [float(i % 3 == 0) for i in range(500)]
    live.apply_many([episode("000001", i, reward=r) for i, r in enumerate(returns)])
    packet = tracker.delta(now=next(CLOCK))
    assert packet is not None
    ref, arrays = _curve(packet, "000001")
    assert ref["level"] == 0
    assert arrays["count"].tolist() == [1] * 500  # one point per episode, below the cap
    assert arrays["r_mean"].tolist() == returns
    expected = np.convolve(returns, np.ones(ROLLING), "full")[:500] / np.minimum(
        np.arange(1, 501), ROLLING
    )
    np.testing.assert_allclose(arrays["roll"], expected, rtol=0, atol=1e-12)
    assert len(packet.content["workers"]["000001"]["recent"]["ep_index"]) == 20


def test_past_the_cap_buckets_merge_into_envelopes_and_the_view_gets_them_all_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(curve_module, "CURVE_BUCKETS", 8)
    live = new_live(["000001"])
    monkeypatch.setattr(live.workers["000001"], "curve", curve_module.BucketCurve(cap=8))
    tracker = LiveTracker(live)
    live.apply_many([episode("000001", i, reward=i) for i in range(5)])
    tracker.delta(now=next(CLOCK))
    live.apply_many([episode("000001", i, reward=i) for i in range(5, 9)])  # ep 8: level 1
    packet = tracker.delta(now=next(CLOCK))
    assert packet is not None
    ref, arrays = _curve(packet, "000001")
    # the view merges buckets 0-1 and 2-3 (episodes 0-3) itself; only changed ones travel
    assert (ref["level"], ref["reset"]) == (1, False)
    assert arrays["index"].tolist() == [2, 3, 4]
    assert arrays["last_ep"].tolist() == [5, 7, 8]
    assert arrays["r_min"].tolist() == [4, 6, 8]
    assert arrays["r_max"].tolist() == [5, 7, 8]
    assert arrays["r_mean"].tolist() == [4.5, 6.5, 8]
    assert arrays["count"].tolist() == [2, 2, 1]
    arrays = live.workers["000001"].curve.since(0)
    level, stored = bucket_episodes(np.arange(9), np.arange(9.0), np.full(9, 5), cap=8)
    assert level == 1
    for name in curve_module.FIELDS:
        np.testing.assert_allclose(arrays[name], stored[name], rtol=1e-6)


def test_snapshot_matches_the_state_after_the_last_delta() -> None:
    live = new_live(["000001"])
    tracker = LiveTracker(live)
    live.apply_many([started("000001"), grid("000001"), steps("000001", 0, [4, 5])])
    live.apply_many([episode("000001", i, reward=i) for i in range(3)])
    tracker.delta(now=next(CLOCK))
    live.apply(episode("000001", 3, reward=3))  # arrived after the delta
    snap = tracker.snapshot()
    assert snap.content["seq"] == tracker.seq == 1
    assert snap.content["colours"] == {"000001": worker_colour("000001")}
    ref, arrays = _curve(snap, "000001")
    # the curve as it is now: buckets are idempotent, the next delta repeats bucket 3 harmlessly
    assert ref["reset"] is True
    assert arrays["r_mean"].tolist() == [0, 1, 2, 3]
    state = snap.content["workers"]["000001"]
    assert state["grid"]["rows"][0] == "SFFF"
    assert state["position"] == 5
    assert state["recent"]["ep_index"] == [0, 1, 2]
    nxt = tracker.delta(now=next(CLOCK))
    assert nxt is not None
    ref, arrays = _curve(nxt, "000001")
    assert arrays["index"].tolist() == [3]
    assert ref["reset"] is False


def test_progress_and_failure_scalars() -> None:
    live = new_live(["000001"])
    tracker = LiveTracker(live)
    tracker.delta(now=next(CLOCK))
    live.apply(progress("000001", 4, 12))
    scalars = tracker.delta(now=next(CLOCK)).content["workers"]["000001"]["scalars"]  # type: ignore[union-attr]
    assert scalars == {
        "episodes_done": 4,
        "steps_done": 12,
        "steps_per_s": 1234.5,
        "epsilon": 0.5,
        "ep_index": 4,
    }
    live.apply(ended("000001", "failed", error="ValueError: boom", traceback="Traceback..."))
    scalars = tracker.delta(now=next(CLOCK)).content["workers"]["000001"]["scalars"]  # type: ignore[union-attr]
    assert scalars["status"] == "failed"
    assert scalars["error"] == "ValueError: boom"
    assert scalars["traceback"] == "Traceback..."
    # Regression: the worker's own `failed` event comes before the OS reports its exit
    # code; the dashboard must keep ticking until that code is known and sent.
    assert not tracker.all_final()
    live.set_process("000001", status="failed", exit_code=1)
    scalars = tracker.delta(now=next(CLOCK)).content["workers"]["000001"]["scalars"]  # type: ignore[union-attr]
    assert scalars["exit_code"] == 1
    assert tracker.all_final()


def test_frames_are_rate_capped_and_rgb_only_for_focused_workers() -> None:
    live = new_live(["000001"])
    tracker = LiveTracker(live)
    tracker.delta(now=0.0)
    live.apply(ansi_frame("000001", 0, 1))
    first = tracker.delta(now=1.0)
    assert first is not None
    assert first.content["workers"]["000001"]["frame"]["text"].startswith("\n\x1b[41mS")
    live.apply(ansi_frame("000001", 0, 2))
    assert tracker.delta(now=1.05) is None  # under 0.1 s since the last frame
    assert tracker.delta(now=1.2) is not None
    live.apply(rgb_frame("000001", 0, 3))
    assert tracker.delta(now=5.0) is None  # nobody shows this worker's tab
    tracker.focused["view-a"] = "000001"
    packet = tracker.delta(now=5.1)
    assert packet is not None
    frame = packet.content["workers"]["000001"]["frame"]
    assert frame["shape"] == [4, 6, 3]
    png = packet.buffers[frame["png"]["buffer"]]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_recent_table_is_sent_at_most_twice_a_second_but_always_when_final() -> None:
    live = new_live(["000001"])
    tracker = LiveTracker(live)
    live.apply(episode("000001", 0))
    assert tracker.delta(now=10.0).content["workers"]["000001"]["recent"]["ep_index"] == [0]  # type: ignore[union-attr]
    live.apply(episode("000001", 1))
    change = tracker.delta(now=10.1).content["workers"]["000001"]  # type: ignore[union-attr]
    assert "curve" in change
    assert "recent" not in change
    live.apply(ended("000001", episodes_done=2))
    change = tracker.delta(now=10.2).content["workers"]["000001"]  # type: ignore[union-attr]
    assert change["recent"]["ep_index"] == [1]


def test_png_rgb_round_trips_pixels() -> None:
    h, w = 3, 5
    data = bytes(range(h * w * 3))
    png = png_rgb(data, [h, w, 3])
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (w, h)
    idat_len = struct.unpack(">I", png[33:37])[0]
    raw = zlib.decompress(png[41 : 41 + idat_len])
    rows = [raw[y * (w * 3 + 1) : (y + 1) * (w * 3 + 1)] for y in range(h)]
    assert all(r[0] == 0 for r in rows)
    assert b"".join(r[1:] for r in rows) == data
    with pytest.raises(ValueError, match="needs 45"):
        png_rgb(data[:-1], [h, w, 3])


def _merge_view(view: dict[int, tuple[float, ...]]) -> dict[int, tuple[float, ...]]:
    """One level up, as curves.js ``Curve.mergeTo`` does (fields after ``index``)."""
    out: dict[int, tuple[float, ...]] = {}
    for k in sorted(view):
        count, last, lo, hi, mean, roll, length = view[k]
        if k // 2 not in out:
            out[k // 2] = view[k]
            continue
        c0, l0, lo0, hi0, m0, r0, len0 = out[k // 2]
        c = c0 + count
        later = last >= l0
        out[k // 2] = (
            c,
            last if later else l0,
            min(lo0, lo),
            max(hi0, hi),
            (m0 * c0 + mean * count) / c,
            roll if later else r0,
            (len0 * c0 + length * count) / c,
        )
    return out


@given(batches=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=25))
@settings(max_examples=60, deadline=None)
def test_deltas_rebuild_exactly_the_stored_curve(batches: list[int]) -> None:
    """Whatever the batch sizes (and bucket merges), a view upserting the deltas the way the
    JS does holds the curve that the store would give for the same episodes."""
    live = new_live(["000001"])
    live.workers["000001"].curve = curve_module.BucketCurve(cap=16)
    tracker = LiveTracker(live)
    view: dict[int, tuple[float, ...]] = {}
    level, next_ep = 0, 0
    rewards: list[float] = []
    for size in batches:
        batch = [float((next_ep + i) * 37 % 11) for i in range(size)]
        live.apply_many([episode("000001", next_ep + i, r) for i, r in enumerate(batch)])
        rewards += batch
        next_ep += size
        packet = tracker.delta(now=next(CLOCK))
        change = packet.content["workers"].get("000001", {}) if packet else {}
        if "curve" not in change:
            continue
        ref, arrays = _curve(packet, "000001")
        if ref["reset"]:
            view, level = {}, ref["level"]
        assert ref["level"] >= level
        while level < ref["level"]:  # merge pairwise, as the JS view does
            view, level = _merge_view(view), level + 1
        for i, k in enumerate(arrays["index"].tolist()):
            view[k] = tuple(float(arrays[n][i]) for n in curve_module.FIELDS[1:])
    stored_level, stored = bucket_episodes(
        np.arange(len(rewards)), np.asarray(rewards), np.full(len(rewards), 5), cap=16
    )
    assert level == stored_level
    assert sorted(view) == stored["index"].tolist()
    for i, k in enumerate(stored["index"].tolist()):
        expected = [float(stored[n][i]) for n in curve_module.FIELDS[1:]]
        np.testing.assert_allclose(view[k], expected, rtol=1e-6, atol=1e-9)  # float32 returns


def test_non_finite_returns_travel_as_none_and_an_idle_tick_sends_nothing() -> None:
    """Regression (widgets audit): a NaN return made mean_return NaN, and NaN != NaN made
    every tick a delta, so the ticker never ended; jupyter_client sends NaN / inf as the
    strings "nan" / "inf", on which the views' number formatting threw."""
    live = new_live(["000001"])
    tracker = LiveTracker(live)
    live.apply_many(
        [episode("000001", 0, reward=float("nan")), episode("000001", 1, reward=float("inf"))]
    )
    packet = tracker.delta(now=next(CLOCK))
    assert packet is not None
    json.dumps(packet.content, allow_nan=False)  # nothing JSON cannot carry
    change = packet.content["workers"]["000001"]
    for name in ("mean_return", "last100_return", "last20_return"):
        assert change["scalars"][name] is None
    assert change["recent"]["total_reward"] == [None, None]
    assert tracker.delta(now=next(CLOCK)) is None  # nothing changed: nothing to send
    snap = tracker.snapshot()
    json.dumps(snap.content, allow_nan=False)
    assert snap.content["workers"]["000001"]["recent"]["total_reward"] == [None, None]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf - inf
def test_a_stored_run_with_non_finite_returns_gives_a_json_safe_snapshot(tmp_path: Path) -> None:
    """The store snapshot (RunBrowser, another kernel) maps NaN / inf to None as well, and
    tells the view which frames the run records."""
    from tests.kit.runs import add_run, make_db

    db = make_db(tmp_path / "x.sqlite")
    run_id = add_run(
        db, workers=1, episodes=3, reward=lambda _w, ep: [1.0, math.inf, -math.inf][ep]
    )
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET config = ?", (json.dumps({"telemetry": {"frames": "ansi"}}),))
    con.close()
    snap = store_snapshot(db, run_id).content
    json.dumps(snap, allow_nan=False)
    worker = snap["workers"]["000001"]
    assert worker["recent"]["total_reward"] == [1.0, None, None]
    assert worker["scalars"]["mean_return"] is None
    assert snap["frames"] == "ansi"
