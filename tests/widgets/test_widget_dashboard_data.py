"""Snapshots and deltas built from a real RunLive fed with real wire events."""

from __future__ import annotations

import itertools
import struct
import zlib

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

from nbtrain.live import hub
from nbtrain.widgets.dashboard_data import (
    MAX_POINTS_PER_TICK,
    LiveTracker,
    bin_curve,
    png_rgb,
)

CLOCK = itertools.count(start=1000.0, step=1.0)  # ticks a second apart unless a test says


def _curve(packet, wid):  # type: ignore[no-untyped-def]
    ref = packet.content["workers"][wid]["curve"]
    arrays = {
        name: np.frombuffer(packet.buffers[ref[name]["buffer"]], dtype=ref[name]["dtype"])
        for name in ("ep_index", "total_reward", "length")
    }
    return ref, arrays


def test_bin_curve_keeps_small_batches_and_averages_large_ones() -> None:
    small = {"ep_index": np.arange(3), "total_reward": np.ones(3), "length": np.ones(3)}
    assert bin_curve(small, 4) is small
    n = 100
    big = {
        "ep_index": np.arange(n),
        "total_reward": np.arange(n, dtype=float),
        "length": np.full(n, 7),
    }
    out = bin_curve(big, 10)
    assert out["ep_index"].tolist() == list(range(9, 100, 10))
    assert out["total_reward"].tolist() == [i * 10 + 4.5 for i in range(10)]
    assert out["length"].tolist() == [7] * 10


def test_deltas_carry_only_what_changed_and_nothing_when_idle() -> None:
    live = new_live(["000001", "000002"])
    tracker = LiveTracker(live)
    assert tracker.delta(now=next(CLOCK)) is not None  # initial scalars of both workers
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
    assert (ref["start"], ref["end"], ref["reset"]) == (0, 5, True)
    assert arrays["total_reward"].tolist() == [0, 1, 2, 3, 4]
    assert change["recent"]["ep_index"] == [0, 1, 2, 3, 4]
    live.apply(episode("000001", 5, reward=9))
    packet = tracker.delta(now=next(CLOCK))
    assert packet is not None
    ref, arrays = _curve(packet, "000001")
    assert (ref["start"], ref["end"], ref["reset"]) == (5, 6, False)
    assert arrays["ep_index"].tolist() == [5]  # never the whole history again
    assert packet.content["workers"]["000001"]["recent"]["ep_index"] == [5]
    assert packet.content["seq"] == 3


def test_a_burst_of_episodes_is_binned_but_covers_every_point() -> None:
    live = new_live(["000001"])
    tracker = LiveTracker(live)
    tracker.delta(now=next(CLOCK))
    live.apply_many([episode("000001", i, reward=1.0) for i in range(1000)])
    packet = tracker.delta(now=next(CLOCK))
    assert packet is not None
    ref, arrays = _curve(packet, "000001")
    assert (ref["start"], ref["end"]) == (0, 1000)
    assert len(arrays["ep_index"]) == MAX_POINTS_PER_TICK
    assert arrays["ep_index"][-1] == 999
    assert len(packet.content["workers"]["000001"]["recent"]["ep_index"]) == 20
    assert packet.nbytes < 2_000


def test_hub_decimation_resends_the_whole_bounded_curve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "CURVE_CAP", 8)
    live = new_live(["000001"])
    tracker = LiveTracker(live)
    live.apply_many([episode("000001", i) for i in range(5)])
    tracker.delta(now=next(CLOCK))
    live.apply_many([episode("000001", i) for i in range(5, 9)])  # reaches the cap
    packet = tracker.delta(now=next(CLOCK))
    assert packet is not None
    ref, arrays = _curve(packet, "000001")
    assert ref["reset"] is True
    assert ref["epoch"] == 1
    assert arrays["ep_index"].tolist() == [0, 2, 4, 6, 8]


def test_snapshot_matches_the_state_after_the_last_delta() -> None:
    live = new_live(["000001"])
    tracker = LiveTracker(live)
    live.apply_many([started("000001"), grid("000001"), steps("000001", 0, [4, 5])])
    live.apply_many([episode("000001", i, reward=i) for i in range(3)])
    tracker.delta(now=next(CLOCK))
    live.apply(episode("000001", 3, reward=3))  # arrived after the delta: not in the snapshot
    snap = tracker.snapshot()
    assert snap.content["seq"] == tracker.seq == 1
    ref, arrays = _curve(snap, "000001")
    assert ref["end"] == 3
    assert arrays["total_reward"].tolist() == [0, 1, 2]
    state = snap.content["workers"]["000001"]
    assert state["grid"]["rows"][0] == "SFFF"
    assert state["position"] == 5
    assert state["recent"]["ep_index"] == [0, 1, 2]
    nxt = tracker.delta(now=next(CLOCK))
    assert nxt is not None
    ref, _ = _curve(nxt, "000001")
    assert (ref["start"], ref["end"]) == (3, 4)


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


@given(batches=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=25))
@settings(max_examples=60, deadline=None)
def test_deltas_cover_the_hub_curve_without_gaps_or_repeats(batches: list[int]) -> None:
    """Whatever the batch sizes (and hub decimations), a view applying the deltas the way
    the JS does ends up covering exactly the hub's points."""
    original = hub.CURVE_CAP
    hub.CURVE_CAP = 64
    try:
        live = new_live(["000001"])
        tracker = LiveTracker(live)
        epoch, end, next_ep = 0, 0, 0
        for size in batches:
            live.apply_many([episode("000001", next_ep + i) for i in range(size)])
            next_ep += size
            packet = tracker.delta(now=next(CLOCK))
            change = packet.content["workers"].get("000001", {}) if packet else {}
            if "curve" not in change:
                continue
            ref = change["curve"]
            if ref["reset"]:
                epoch, end = ref["epoch"], ref["end"]
            else:
                assert ref["epoch"] == epoch
                assert ref["start"] == end
                end = ref["end"]
        cursor, arrays, _ = live.workers["000001"].curve_since(0)
        assert (epoch, end) == divmod(cursor, 1 << 32)
        assert len(arrays["ep_index"]) == end
    finally:
        hub.CURVE_CAP = original
