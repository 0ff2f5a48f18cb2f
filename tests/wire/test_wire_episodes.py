"""Finished episodes travel as column batches (``Episodes``); the kernel derives their ids."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbtrain.ids import format_episode_id, new_run_id
from nbtrain.live.hub import RECENT_EPISODES, RunLive
from nbtrain.store.chunks_write import episode_rows
from nbtrain.store.writer import acquire_writer
from nbtrain.wire.codec import decode_all, encode_frame
from nbtrain.wire.events import Episode, Episodes


def batch(run_id: str, wid: str, eps: list[int], **over: list[Any]) -> Episodes:
    n = len(eps)
    columns: dict[str, list[Any]] = {
        "ep_index": eps,
        "total_reward": [float(ep % 3) for ep in eps],
        "length": [ep + 1 for ep in eps],
        "terminated": [ep % 2 == 0 for ep in eps],
        "truncated": [ep % 2 == 1 for ep in eps],
        "seed": [1000 + ep for ep in eps],
        "started_at": [1e9 + ep for ep in eps],
        "ended_at": [1e9 + ep + 0.5 for ep in eps],
        "extras": [{"epsilon": 1.0 / (ep + 1)} for ep in eps],
    }
    assert all(len(c) == n for c in columns.values())
    columns.update(over)
    return Episodes(run_id=run_id, worker_id=wid, **columns)


@given(st.lists(st.integers(0, 10**7), max_size=30), st.integers(1, 999_999))
def test_expanded_episodes_carry_every_field_and_their_ids(eps: list[int], worker: int) -> None:
    run_id, wid = new_run_id(), f"{worker:06d}"
    event = batch(run_id, wid, eps)
    assert decode_all(encode_frame(event)) == [event]
    out = event.expand()
    assert [e.episode_id for e in out] == [format_episode_id(run_id, ep, wid) for ep in eps]
    assert all(isinstance(e, Episode) for e in out)
    for i, one in enumerate(out):
        assert (one.ep_index, one.length, one.seed, one.extras) == (
            eps[i],
            eps[i] + 1,
            1000 + eps[i],
            {"epsilon": 1.0 / (eps[i] + 1)},
        )
    assert event.expand(len(eps) // 2) == out[len(eps) // 2 :]


def test_columns_of_different_lengths_cannot_be_expanded() -> None:
    event = batch(new_run_id(), "000001", [0, 1, 2], seed=[1, 2])
    with pytest.raises(ValueError, match=r"shorter|longer"):
        event.expand()


def test_the_store_keeps_a_batch_as_rows_and_refuses_a_malformed_one(tmp_path: Path) -> None:
    db = tmp_path / "e.sqlite"
    writer = acquire_writer(db)
    try:
        run = new_run_id()
        writer.create_run(run_id=run, name="e", created_at=time.time(), digest="", config={})
        writer.upsert_worker(run, "000001", status="running")
        writer.add_events([batch(run, "000001", [0, 1, 2])])
        writer.add_events([batch(run, "000001", [3, 4], length=[9])])  # malformed: refused
        writer.add_events([batch(run, "000001", [5])])
        writer.flush(30)
        assert writer.failed_writes == 2  # the two rows of the malformed batch
    finally:
        writer.release()
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT ep_index, episode_id, total_reward, length, terminated, truncated, seed, "
        "extras FROM episodes WHERE run_id = ? ORDER BY ep_index",
        (run,),
    ).fetchall()
    conn.close()
    assert [r[0] for r in rows] == [0, 1, 2, 5]
    assert [r[1] for r in rows] == [format_episode_id(run, ep, "000001") for ep in (0, 1, 2, 5)]
    assert rows[1][2:7] == (1.0, 2, 0, 1, 1001)
    assert json.loads(rows[3][7]) == {"epsilon": 1.0 / 6}


def test_the_live_hub_counts_a_batch_and_ignores_a_malformed_one() -> None:
    run = new_run_id()
    live = RunLive(run, ["000001"])
    n = RECENT_EPISODES + 50
    live.apply(batch(run, "000001", list(range(n))))
    live.apply(batch(run, "000001", [n, n + 1], total_reward=[1.0]))  # malformed: ignored
    worker = live.workers["000001"]
    assert worker.episodes_done == n
    assert worker.epsilon == pytest.approx(1.0 / n)
    assert worker.mean_return == pytest.approx(sum(ep % 3 for ep in range(n)) / n)
    recent = worker.recent_episodes(RECENT_EPISODES)
    assert [r["ep_index"] for r in recent] == list(range(n - RECENT_EPISODES, n))
    assert recent[-1]["episode_id"] == format_episode_id(run, n - 1, "000001")
    assert worker.curve.stamp == n


def test_the_live_hub_keeps_no_object_the_cyclic_gc_must_track() -> None:
    """Regression: holding one Episode struct per recent episode promoted thousands of
    tracked objects a second into the oldest generation; the kernel then ran full
    collections of 170-230 ms under load (benchmarks/kernel_latency.py p99 30 -> 160 ms)."""
    import gc

    run = new_run_id()
    live = RunLive(run, ["000001"])
    live.apply(batch(run, "000001", list(range(500))))
    live.apply(
        Episode(
            run_id=run,
            worker_id="000001",
            ep_index=500,
            episode_id="x",
            total_reward=1.0,
            length=1,
            terminated=True,
            truncated=False,
            seed=1,
            started_at=1.0,
            ended_at=2.0,
            extras={"epsilon": 0.1},
        )
    )
    rows = list(live.workers["000001"]._recent)
    assert len(rows) == RECENT_EPISODES
    assert not any(gc.is_tracked(row) for row in rows)


def as_column(event: Episodes) -> Episodes:
    """The same batch with its ε sent as an extras column, as a fused tabular worker does."""
    eps = [extras["epsilon"] for extras in event.extras]
    return msgspec.structs.replace(event, extras=[], extras_columns={"epsilon": eps})


@given(
    st.lists(st.integers(0, 10**7), unique=True, max_size=30).map(sorted),
    st.lists(st.floats(allow_nan=False, width=64), min_size=30, max_size=30),
)
def test_an_extras_column_travels_expands_and_is_stored_as_the_dicts_would_be(
    eps: list[int], values: list[float]
) -> None:
    run_id = new_run_id()
    dicts = batch(run_id, "000007", eps, extras=[{"epsilon": v} for v in values[: len(eps)]])
    column = as_column(dicts)
    assert decode_all(encode_frame(column)) == [column]
    column.check_columns()
    assert column.expand() == dicts.expand()
    assert column.episode_extras() == dicts.extras
    assert column.last_extras() == (dicts.extras[-1] if eps else None)
    assert episode_rows(column, "000007") == episode_rows(dicts, "000007")


_TRICKY = [0, 1, 1.0, True, 0.0, -0.0, "1", None]  # equal to another, encoded otherwise
_scalars = st.one_of(
    st.sampled_from(_TRICKY),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(width=64),  # NaN, infinities, -0.0 and 0.0 included
    st.booleans(),
    st.text(max_size=5),
    st.none(),
    st.lists(st.integers(0, 2), max_size=2),  # not a scalar: never encoded once
)


@given(
    st.dictionaries(st.sampled_from(["epsilon", "alpha", "k\n", ""]), _scalars, max_size=3),
    st.integers(1, 12),
    st.data(),
)
def test_constant_extras_columns_are_stored_as_each_episodes_dict_would_be(
    first: dict[str, Any], n: int, data: st.DataObject
) -> None:
    # One value per column repeated, sometimes with one row changed to a value that may
    # compare equal to it (1, 1.0, True; 0.0, -0.0): the batch's one encoding must be
    # exactly what each episode's dict encodes to.
    rows = [dict(first) for _ in range(n)]
    if first and data.draw(st.booleans()):
        i = data.draw(st.integers(0, n - 1))
        key = data.draw(st.sampled_from(sorted(first)))
        rows[i][key] = data.draw(st.sampled_from(_TRICKY))
    dicts = batch(new_run_id(), "000007", list(range(n)), extras=rows)
    columns = {key: [row[key] for row in rows] for key in first}
    column = msgspec.structs.replace(dicts, extras=[], extras_columns=columns)
    stored = [row[-1] for row in episode_rows(column, "000007")]
    assert stored == [row[-1] for row in episode_rows(dicts, "000007")]


@pytest.mark.parametrize(
    ("same", "other"),
    [(0.0, -0.0), (-0.0, 0.0), (1, True), (True, 1), (1, 1.0), (1.0, 1), (0, False), (0, 0.0)],
)
def test_equal_extras_values_that_encode_differently_are_not_shared(same: Any, other: Any) -> None:
    rows = [{"x": same}, {"x": same}, {"x": other}, {"x": same}]
    dicts = batch(new_run_id(), "000001", [0, 1, 2, 3], extras=rows)
    column = msgspec.structs.replace(
        dicts, extras=[], extras_columns={"x": [same, same, other, same]}
    )
    stored = [row[-1] for row in episode_rows(column, "000001")]
    assert stored == [msgspec.json.encode(row).decode() for row in rows]
    assert stored[2] != stored[0]


def test_a_batch_of_one_extras_value_is_encoded_once() -> None:
    n = 500
    column = as_column(
        batch(new_run_id(), "000001", list(range(n)), extras=[{"epsilon": 0.05}] * n)
    )
    stored = [row[-1] for row in episode_rows(column, "000001")]
    assert stored == ['{"epsilon":0.05}'] * n
    assert len({id(text) for text in stored}) == 1  # one string: encoded once


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extras": [{"epsilon": 0.5}] * 3}, "both extras and extras_columns"),
        ({"extras_columns": {"epsilon": [0.5, 0.25]}}, "'epsilon' has 2 values for 3 episodes"),
        ({"seed": [1, 2]}, r"different lengths \[2, 3\]"),
    ],
)
def test_a_malformed_extras_column_batch_is_refused_by_store_and_live_view(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    run = new_run_id()
    bad = msgspec.structs.replace(as_column(batch(run, "000001", [0, 1, 2])), **change)
    with pytest.raises(ValueError, match=message):
        bad.check_columns()
    with pytest.raises(ValueError, match=message):
        bad.expand()
    live = RunLive(run, ["000001"])
    live.apply(bad)
    assert live.workers["000001"].episodes_done == 0  # ignored
    writer = acquire_writer(tmp_path / "e.sqlite")
    try:
        writer.create_run(run_id=run, name="e", created_at=time.time(), digest="", config={})
        writer.upsert_worker(run, "000001", status="running")
        writer.add_events([bad, as_column(batch(run, "000001", [3]))])
        writer.flush(30)
        assert writer.failed_writes == 3  # the malformed batch's rows, counted
    finally:
        writer.release()
    conn = sqlite3.connect(tmp_path / "e.sqlite")
    stored = conn.execute("SELECT ep_index, extras FROM episodes").fetchall()
    conn.close()
    assert stored == [(3, json.dumps({"epsilon": 0.25}, separators=(",", ":")))]


def test_the_live_view_takes_epsilon_from_the_last_value_of_the_column() -> None:
    run = new_run_id()
    live = RunLive(run, ["000001"])
    live.apply(as_column(batch(run, "000001", [0, 1, 2, 3])))
    assert live.workers["000001"].epsilon == pytest.approx(0.25)
    assert live.workers["000001"].episodes_done == 4


def test_episode_rows_carry_the_flags_as_plain_ints() -> None:
    # sqlite3 binds an exact int at once but looks a bool up among the adapters first
    # (~170 ns a value, two an episode row): the rows hold 0 and 1, never True/False.
    rows = episode_rows(batch(new_run_id(), "000001", [0, 1, 2, 3]), "000001")
    flags = [(row[6], row[7]) for row in rows]
    assert flags == [(1, 0), (0, 1), (1, 0), (0, 1)]
    assert {type(value) for pair in flags for value in pair} == {int}
