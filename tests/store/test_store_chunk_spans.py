"""Chunks that span episodes (schema 4): one chunk per ``Steps`` event, read back whole or by
episode, cut back when a worker's last episodes never finished, next to schema-3 chunks."""

from __future__ import annotations

import itertools
import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.kit.events import T0, episode
from tests.store.test_store_chunks import new_run
from tests.store.test_store_v3 import downgrade_to_v3

from nbtrain.store import TelemetryStore
from nbtrain.store.chunks_read import RANGE_GAP
from nbtrain.store.chunks_write import CHUNK_BYTES
from nbtrain.store.writer import StoreWriter, acquire_writer
from nbtrain.wire.events import Steps


def steps_event(run: str, wid: str, rows: list[tuple[int, int]]) -> Steps:
    n = len(rows)
    return Steps(
        run_id=run,
        worker_id=wid,
        ep_index=[e for e, _ in rows],
        step_index=[s for _, s in rows],
        action=[s % 3 for _, s in rows],
        reward=[e + s / 8 for e, s in rows],
        terminated=[False] * n,
        truncated=[False] * n,
        obs=[[e, s] for e, s in rows],
        extras=[{"e": e, "s": s} for e, s in rows],
        ts=[T0 + e + s / 1000 for e, s in rows],
    )


def hand_chunk(conn: sqlite3.Connection, run: str, n_steps: int, last_ep: int, text: str) -> None:
    """A spanning chunk of worker 000001 from episode 0, written by hand (not validated)."""
    conn.execute(
        "INSERT INTO step_chunks(run_id, worker_id, ep_index, first_step, n_steps, last_ep, "
        "rows) VALUES (?, '000001', 0, 0, ?, ?, ?)",
        (run, n_steps, last_ep, text),
    )
    conn.commit()


def pairs(df: Any) -> list[tuple[int, int]]:
    return list(zip(df["ep_index"].tolist(), df["step_index"].tolist(), strict=True))


def view_pairs(db: Path, run: str, wid: str) -> list[tuple[int, int]]:
    conn = sqlite3.connect(db)
    try:
        sql = ("SELECT ep_index, step_index FROM steps WHERE run_id = ? AND worker_id = ? "
               "ORDER BY ep_index, step_index")  # fmt: skip
        return [tuple(r) for r in conn.execute(sql, (run, wid))]
    finally:
        conn.close()


@st.composite
def recorded_steps(draw: st.DrawFn) -> tuple[list[tuple[int, int]], list[int], int]:
    """``(ep_index, step_index)`` rows of a worker (some episodes long, every n-th step
    recorded, some episodes without a recorded step), cut points into events, and the
    number of episodes stored before the worker died."""
    lengths = draw(st.lists(st.integers(0, 3 * RANGE_GAP), min_size=1, max_size=60))
    every = draw(st.integers(1, 3))
    rows = [(e, s) for e, n in enumerate(lengths) for s in range(0, n, every)]
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(rows) - 1)), max_size=8)))
    stored = draw(st.integers(0, len(lengths)))
    return rows, cuts, stored


@settings(max_examples=40, deadline=None)
@given(
    drawn=recorded_steps(),
    wanted=st.lists(st.integers(0, 70), max_size=12),
)
def test_steps_read_back_whole_by_episode_and_after_a_cut(
    drawn: tuple[list[tuple[int, int]], list[int], int], wanted: list[int]
) -> None:
    rows, cuts, stored = drawn
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "s.sqlite"
        w = acquire_writer(db)
        try:
            run = new_run(w, "000001", "000002")
            bounds = [0, *cuts, len(rows)]
            events = [rows[a:b] for a, b in itertools.pairwise(bounds) if a < b]
            w.add_events([steps_event(run, "000001", part) for part in events])
            w.add_events([steps_event(run, "000002", [(0, 0), (1, 0), (70, 0)])])
            w.flush()
            assert w.failed_writes == 0
            store = TelemetryStore(db)
            whole = store.steps(run, 1)
            assert pairs(whole) == rows
            assert whole["obs"].tolist() == [[e, s] for e, s in rows]
            assert whole["extras"].tolist() == [json.dumps({"e": e, "s": s}).replace(" ", "")
                                                for e, s in rows]  # fmt: skip
            assert view_pairs(db, run, "000001") == rows
            some = store.steps(run, 1, ep_index=wanted)
            assert pairs(some) == [r for r in rows if r[0] in set(wanted)]
            both = store.steps(run, ep_index=wanted)
            assert pairs(both) == pairs(some) + [
                r for r in [(0, 0), (1, 0), (70, 0)] if r[0] in set(wanted)
            ]
            # The worker died after `stored` episodes: the rest of its steps go.
            w.add_events([episode(run, "000001", i) for i in range(stored)])
            assert w.discard_unfinished_steps(run, 1) == stored
            kept = [r for r in rows if r[0] < stored]
            assert pairs(store.steps(run, 1)) == kept
            assert view_pairs(db, run, "000001") == kept
            assert pairs(store.steps(run, 1, ep_index=wanted)) == [
                r for r in kept if r[0] in set(wanted)
            ]
            assert pairs(store.steps(run, 2)) == [(0, 0), (1, 0), (70, 0)]
            # Its restart writes from `stored` on without colliding.
            again = [(stored, 0), (stored, 1), (stored + 1, 0)]
            w.add_events([steps_event(run, "000001", again)])
            w.flush()
            assert w.failed_writes == 0
            assert pairs(store.steps(run, 1)) == kept + again
        finally:
            w.release()


def stored_rows(chunks: list[tuple[Any, ...]]) -> list[tuple[int, int]]:
    """``(ep_index, step_index)`` of each stored row, from either chunk layout."""
    out: list[tuple[int, int]] = []
    for ep_index, _, _, last_ep, text in chunks:
        rows = json.loads(text)
        if last_ep is None:
            assert all(len(row) == 8 for row in rows)
            out += [(ep_index, row[0]) for row in rows]
        else:
            assert all(len(row) == 9 for row in rows)
            assert (rows[0][-1], rows[-1][-1]) == (ep_index, last_ep)
            out += [(row[-1], row[0]) for row in rows]
    return out


LAYOUTS = {
    # mean steps per episode >= LONG_EPISODE: a chunk per episode
    "per episode": [(0, 0), (1, 0), *[(2, s) for s in range(3000)], (3, 0)],
    # short on average: chunks span episodes, the long one among them too
    "spanning": [*[(e, 0) for e in range(200)], *[(200, s) for s in range(3000)], (201, 0)],
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_long_episode_across_chunks_is_read_whole_by_index(
    db: Path, writer: StoreWriter, layout: str
) -> None:
    rows = LAYOUTS[layout]
    long = rows[-2][0]
    run = new_run(writer, "000001")
    writer.add_events([steps_event(run, "000001", rows)])
    writer.flush()
    assert writer.failed_writes == 0
    store = TelemetryStore(db)
    conn = sqlite3.connect(db)
    chunks = conn.execute(
        "SELECT ep_index, first_step, n_steps, last_ep, rows FROM step_chunks ORDER BY 1, 2"
    ).fetchall()
    assert stored_rows(chunks) == rows
    assert sum(c[2] for c in chunks) == len(rows)
    assert {c[3] is None for c in chunks} == {layout == "per episode"}
    holding = [c for c in chunks if long in {row[0] for row in stored_rows([c])}]
    if layout == "per episode":  # one chunk per episode of the event, whatever its size
        assert [c[2] for c in chunks] == [1, 1, 3000, 1]
    else:  # the long episode lies in several chunks, each at most about CHUNK_BYTES
        assert len(holding) >= 3000 * 60 // CHUNK_BYTES
        assert max(len(c[4]) for c in chunks) < 1.5 * CHUNK_BYTES
    assert pairs(store.steps(run, 1, ep_index=long)) == [r for r in rows if r[0] == long]
    assert pairs(store.steps(run, 1, ep_index=[long + 1, 0])) == [(0, 0), (long + 1, 0)]
    assert pairs(store.steps(run, 1)) == rows
    assert view_pairs(db, run, "000001") == rows
    assert len(store.steps(run, 1, ep_index=[])) == 0
    assert len(store.steps(run, 1, ep_index=long + 2)) == 0


def test_a_schema_3_file_keeps_its_chunks_and_takes_new_ones(tmp_path: Path) -> None:
    """Upgrading adds ``last_ep`` and the new view; old one-episode chunks are not rewritten
    and read as before, next to chunks that span episodes."""
    db = tmp_path / "v3.sqlite"
    w = acquire_writer(db)
    run = new_run(w, "000001")
    old = [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1)]
    w.add_events([steps_event(run, "000001", old)])
    w.add_events([episode(run, "000001", i) for i in range(3)])
    w.release()
    downgrade_to_v3(db)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM step_chunks").fetchone() == (3,)
    before = conn.execute("SELECT ep_index, rows FROM step_chunks ORDER BY 1").fetchall()
    conn.close()
    w = acquire_writer(db)  # upgrades to schema 4
    try:
        new = [(3, 0), (4, 0), (4, 1), (5, 0)]
        w.add_events([steps_event(run, "000001", new)])
        w.add_events([episode(run, "000001", i) for i in (3, 4)])
        w.flush()
        assert w.discard_unfinished_steps(run, 1) == 5  # episode 5 never finished
    finally:
        w.release()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone() == (4,)
    assert (
        conn.execute(
            "SELECT ep_index, rows FROM step_chunks WHERE last_ep IS NULL ORDER BY 1"
        ).fetchall()
        == before
    )
    assert conn.execute("SELECT ep_index, n_steps, last_ep FROM step_chunks WHERE last_ep "
                        "IS NOT NULL").fetchall() == [(3, 3, 4)]  # fmt: skip
    store = TelemetryStore(db)
    assert pairs(store.steps(run)) == old + new[:3]
    assert view_pairs(db, run, "000001") == old + new[:3]
    assert pairs(store.steps(run, ep_index=[1, 4])) == [(1, 0), (4, 0), (4, 1)]
    assert store.steps(run)["extras"].tolist()[-1] == '{"e":4,"s":1}'


@pytest.mark.parametrize("text", ["not json", "[[0,1,0.5,false,false,3,{},1.0]]"])
def test_a_chunk_that_cannot_be_decoded_is_left_by_the_cut(
    db: Path, writer: StoreWriter, text: str
) -> None:
    """Readers skip such a chunk (and log it); cutting leaves it for inspection, and
    recovery goes on."""
    run = new_run(writer, "000001")
    writer.flush()
    conn = sqlite3.connect(db)
    hand_chunk(conn, run, 1, 3, text)
    assert writer.discard_unfinished_steps(run, 1) == 0
    assert conn.execute("SELECT rows FROM step_chunks").fetchall() == []
    hand_chunk(conn, run, 1, 3, text)
    writer.add_events([episode(run, "000001", 0)])
    assert writer.discard_unfinished_steps(run, 1) == 1
    assert conn.execute("SELECT rows FROM step_chunks").fetchall() == [(text,)]
    conn.close()


def test_review_mends_reads_and_refusals(db: Path, writer: StoreWriter) -> None:
    """Regressions found in review: a worker named twice with an ep_index filter read every
    row twice; an unordered event after stored steps was partly stored; an ep_index too
    large for SQLite raised OverflowError."""
    run = new_run(writer, "000001", "000002")
    rows = [(0, 0), (0, 1), (1, 0)]
    writer.add_events([steps_event(run, "000001", rows), steps_event(run, "000002", [(0, 0)])])
    writer.flush()
    store = TelemetryStore(db)
    assert pairs(store.steps(run, [1, "000001"], ep_index=[0, 1])) == rows
    both = store.steps(run, ep_index=[0])
    assert both["worker_id"].tolist() == ["000001", "000001", "000002"]
    # (1, 0) is stored; this event starts before it and is not ordered: refused whole.
    writer.add_events([steps_event(run, "000001", [(0, 5), (9, 0), (2, 0), (3, 0)])])
    writer.flush()
    assert writer.failed_writes == 4
    assert pairs(store.steps(run, 1)) == rows
    with pytest.raises(ValueError, match=r"from 0 to 2\*\*63 - 1"):
        store.steps(run, 1, ep_index=2**63)


def test_the_cut_reads_the_rows_not_last_ep(db: Path, writer: StoreWriter) -> None:
    """A chunk whose last_ep understates its rows (written by hand) is still cut."""
    run = new_run(writer, "000001")
    writer.flush()
    conn = sqlite3.connect(db)
    hand_chunk(
        conn, run, 2, 0, "[[0,1,0.0,false,false,3,{},1.0,0],[0,1,0.0,false,false,3,{},2.0,1]]"
    )
    writer.add_events([episode(run, "000001", 0)])
    assert writer.discard_unfinished_steps(run, 1) == 1
    assert conn.execute("SELECT n_steps, last_ep FROM step_chunks").fetchall() == [(1, 0)]
    conn.close()
    assert pairs(TelemetryStore(db).steps(run)) == [(0, 0)]
