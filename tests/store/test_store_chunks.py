"""Steps stored in chunks: splitting events, the ``steps`` view, the fast reader, migration."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.kit.events import T0, episode, steps

from nbtrain.ids import new_run_id
from nbtrain.log_codes import LOG_SERVICE_SQLITE_MIGRATED, LOG_SERVICE_SQLITE_WRITE_FAILED
from nbtrain.store import SCHEMA_VERSION, TelemetryStore, chunks_write, schema
from nbtrain.store.chunks_write import CHUNK_BYTES, BadSteps, chunk_rows, td_chunk_rows
from nbtrain.store.writer import StoreWriter, acquire_writer
from nbtrain.wire.events import StepRows, Steps


def new_run(w: StoreWriter, *workers: str) -> str:
    run = new_run_id()
    w.create_run(run_id=run, name="c", created_at=time.time(), digest="", config={})
    for wid in workers:
        w.upsert_worker(run, wid, status="running")
    return run


def event(run: str, wid: str, rows: list[tuple[int, int]], **columns: list[Any]) -> Steps:
    """A Steps event for ``(ep_index, step_index)`` rows; other columns derived or given."""
    n = len(rows)
    base: dict[str, list[Any]] = {
        "action": [s % 4 for _, s in rows],
        "reward": [float(s) / 2 for _, s in rows],
        "terminated": [False] * n,
        "truncated": [s % 5 == 4 for _, s in rows],
        "obs": [e * 100 + s for e, s in rows],
        "extras": [{"epsilon": 0.5, "td_error": s * 1e-5} for _, s in rows],
        "ts": [T0 + e + s / 7 for e, s in rows],
    }
    base.update(columns)
    return Steps(run_id=run, worker_id=wid, ep_index=[e for e, _ in rows],
                 step_index=[s for _, s in rows], **base)  # fmt: skip


def chunk_keys(db: Path, run: str) -> list[tuple[Any, ...]]:
    """``(worker_id, ep_index, first_step, n_steps, last_ep)`` of the run's chunks."""
    conn = sqlite3.connect(db)
    try:
        sql = ("SELECT worker_id, ep_index, first_step, n_steps, last_ep FROM step_chunks "
               "WHERE run_id = ? ORDER BY 1, 2, 3")  # fmt: skip
        return conn.execute(sql, (run,)).fetchall()
    finally:
        conn.close()


def test_an_event_spanning_episodes_is_one_chunk(writer: StoreWriter, db: Path) -> None:
    run = new_run(writer, "000001")
    rows = [(0, 7), (0, 8), (1, 0), (1, 1), (1, 2), (4, 0)]
    writer.add_events([event(run, "000001", rows), event(run, "000001", [(4, 1), (5, 0)])])
    writer.flush()
    assert chunk_keys(db, run) == [("000001", 0, 7, 6, 4), ("000001", 4, 1, 2, 5)]
    conn = sqlite3.connect(db)
    text = conn.execute("SELECT rows FROM step_chunks WHERE first_step = 1").fetchone()[0]
    assert [row[0] for row in json.loads(text)] == [1, 0]  # step_index
    assert [row[-1] for row in json.loads(text)] == [4, 5]  # ep_index, last in each row
    df = TelemetryStore(db).steps(run, 1)
    assert list(zip(df["ep_index"], df["step_index"], strict=True)) == [*rows, (4, 1), (5, 0)]
    view = conn.execute("SELECT ep_index, step_index FROM steps ORDER BY 1, 2").fetchall()
    assert view == [*rows, (4, 1), (5, 0)]
    assert writer.rows_written >= 8
    assert writer.failed_writes == 0


def test_every_nth_step_keeps_its_indices(writer: StoreWriter, db: Path) -> None:
    run = new_run(writer, "000001")
    rows = [(e, s) for e in range(3) for s in range(0, 10, 3)]  # telemetry.steps = 3
    writer.add_events([event(run, "000001", rows[:5]), event(run, "000001", rows[5:])])
    writer.flush()
    store = TelemetryStore(db)
    assert store.steps(run, 1)["step_index"].tolist() == [0, 3, 6, 9] * 3
    assert store.steps(run, 1, ep_index=[2, 0])["ep_index"].tolist() == [0] * 4 + [2] * 4
    one = store.steps(run, 1, ep_index=1, columns=["step_index", "obs"])
    assert one["obs"].tolist() == [100, 103, 106, 109]
    conn = sqlite3.connect(db)
    view = conn.execute("SELECT step_index FROM steps WHERE ep_index = 1 ORDER BY step_index")
    assert [r[0] for r in view] == [0, 3, 6, 9]


def _typed(values: list[Any]) -> Any:
    """obs/action as ``steps()`` types them: int64, float64, or objects (lists)."""
    kinds = {type(v) for v in values}
    if kinds == {int}:
        return pd.Series(values, dtype="int64")
    if kinds <= {int, float}:
        return pd.Series(values, dtype="float64")
    return values


def _normalized_view(conn: sqlite3.Connection, run: str) -> pd.DataFrame:
    """The view read with plain pandas, converted to the dtypes ``steps()`` promises."""
    df = pd.read_sql_query("SELECT * FROM steps WHERE run_id = ?", conn, params=(run,))
    df = df.sort_values(["worker_id", "ep_index", "step_index"], ignore_index=True)
    df["run_id"] = df["run_id"].astype("str")
    df["worker_id"] = pd.Categorical(df["worker_id"], sorted(set(df["worker_id"])))
    df["ts"] = pd.to_datetime(df["ts"], unit="s", utc=True).dt.as_unit("ns")
    for name in ("terminated", "truncated"):
        df[name] = df[name].astype(bool)
    for name in ("action", "obs"):
        df[name] = _typed([json.loads(v) if isinstance(v, str) else v for v in df[name]])
    df["extras"] = df["extras"].astype("str")
    return df


def test_view_gives_the_rows_of_the_fast_reader(writer: StoreWriter, db: Path) -> None:
    """Discrete, every-n-th, CartPole-like float arrays, float scalars, missing extras."""
    rng = np.random.default_rng(0)
    run = new_run(writer, "000001", "000002", "000003")
    discrete = [(e, s) for e in range(4) for s in range(e + 2)]
    writer.add_events([event(run, "000001", discrete[:4]), event(run, "000001", discrete[4:])])
    cart = [(e, s) for e in range(3) for s in range(0, 12, 2)]
    obs = [rng.normal(size=4).tolist() for _ in cart]
    obs[0] = [0.1, -0.2, 1e-7, 3.0]
    extras: list[Any] = [None if i % 3 else {"td_error": float(x[0])} for i, x in enumerate(obs)]
    writer.add_events([event(run, "000002", cart, obs=obs, extras=extras)])
    scalar = [(0, s) for s in range(5)]
    writer.add_events([event(run, "000003", scalar, obs=[s * 0.1 for _, s in scalar])])
    writer.flush()
    store = TelemetryStore(db)
    conn = sqlite3.connect(db)
    view = _normalized_view(conn, run)
    fast = store.steps(run)
    assert len(fast) == len(discrete) + len(cart) + len(scalar)
    pd.testing.assert_frame_equal(fast, view)
    for wid in ("000001", "000002", "000003"):
        one = store.steps(run, wid)
        sub = view[view["worker_id"] == wid].reset_index(drop=True)
        sub["worker_id"] = pd.Categorical(sub["worker_id"].astype("str"), [wid])
        for name in ("action", "obs"):
            sub[name] = _typed(sub[name].tolist())
        pd.testing.assert_frame_equal(one, sub)
    assert store.steps(run, 2)["obs"].iloc[0] == [0.1, -0.2, 1e-7, 3.0]
    assert store.steps(run, 2)["extras"].iloc[1] == "{}"
    assert store.steps(run, 3)["obs"].dtype == "float64"


def test_malformed_events_are_counted_and_the_writer_goes_on(
    writer: StoreWriter, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="nbtrain")
    run = new_run(writer, "000001")
    unsorted_eps = event(run, "000001", [(1, 0), (0, 1), (1, 1)])
    unsorted_steps = event(run, "000001", [(2, 0), (2, 3), (2, 1)])
    twice = event(run, "000001", [(2, 4), (3, 0), (3, 0)])  # a step sent twice in one event
    short = msgspec.structs.replace(event(run, "000001", [(3, 0), (3, 1)]), ts=[1.0])
    bad_value = event(run, "000001", [(4, 0)], extras=[{"x": object()}])
    writer.add_events([unsorted_eps, unsorted_steps, twice, short, bad_value])
    writer.add_events([event(run, "000001", [(5, 0), (5, 1)])])
    writer.flush()
    assert writer.failed_writes == 3 + 3 + 3 + 2 + 1
    codes = [getattr(r, "code", None) for r in caplog.records]
    messages = [r.getMessage() for r in caplog.records]
    assert codes.count(LOG_SERVICE_SQLITE_WRITE_FAILED) == 5
    assert sum("not increasing in episode 2" in m for m in messages) == 1
    assert sum("not increasing in episode 3" in m for m in messages) == 1
    assert chunk_keys(db, run) == [("000001", 5, 0, 2, None)]


def test_resent_steps_are_dropped_until_discarded(writer: StoreWriter, db: Path) -> None:
    run = new_run(writer, "000001")
    first = event(run, "000001", [(0, 0), (0, 1), (1, 0)])
    writer.add_events([first, first])  # all three again: dropped
    writer.add_events([event(run, "000001", [(0, 1), (1, 0), (1, 1)])])  # only (1, 1) is new
    writer.flush()
    assert writer.failed_writes == 3 + 2
    assert chunk_keys(db, run) == [("000001", 0, 0, 3, 1), ("000001", 1, 1, 1, None)]
    assert writer.discard_unfinished_steps(run, 1) == 0  # no episode stored
    writer.add_events([first, episode(run, "000001", 0, length=2)])
    writer.flush()
    assert writer.failed_writes == 5
    assert chunk_keys(db, run) == [("000001", 0, 0, 3, 1)]
    assert writer.discard_unfinished_steps(run, 1) == 1  # episode 0 is stored, 1 is not
    assert chunk_keys(db, run) == [("000001", 0, 0, 2, 0)]
    df = TelemetryStore(db).steps(run)
    assert list(zip(df["ep_index"], df["step_index"], strict=True)) == [(0, 0), (0, 1)]


def test_a_duplicate_chunk_from_another_writer_fails_alone(db: Path) -> None:
    w = acquire_writer(db)
    run = new_run(w, "000001")
    w.add_events([steps(run, "000001", 0, 3)])
    w.release()
    w = acquire_writer(db)  # a new writer knows nothing of what is stored
    try:
        w.add_events([steps(run, "000001", 0, 3), steps(run, "000001", 1, 2)])
        w.flush()
        assert w.failed_writes == 3
    finally:
        w.release()
    assert chunk_keys(db, run) == [("000001", 0, 0, 3, None), ("000001", 1, 0, 2, None)]


V1_STEPS_DDL = """CREATE TABLE steps (
    run_id TEXT NOT NULL, worker_id TEXT NOT NULL, ep_index INTEGER NOT NULL,
    step_index INTEGER NOT NULL, action, reward REAL, terminated INTEGER, truncated INTEGER,
    obs, extras TEXT, ts REAL, PRIMARY KEY (run_id, worker_id, ep_index, step_index)
) WITHOUT ROWID"""


def test_a_version_1_file_moves_its_step_rows_into_chunks(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Version 1 (unreleased) stored a row per step; upgrading keeps every value."""
    conn = sqlite3.connect(db)
    for ddl in schema.TABLES_DDL:
        if "step_chunks" not in ddl:
            conn.execute(ddl)
    conn.execute(V1_STEPS_DDL)
    conn.execute("PRAGMA user_version = 1")
    run = new_run_id()
    conn.execute("INSERT INTO runs(run_id, status) VALUES (?, 'completed')", (run,))
    rows = [
        (run, "000002", 0, 0, 1, 0.0, 0, 0, "[0.5,1]", '{"a": 1}', 10.0),
        (run, "000002", 0, 1, 2, 1.0, 1, 0, "[0.25,2]", None, 11.0),
        (run, "000001", 3, 5, 0, 0.5, 0, 1, 7, "{}", 12.0),
    ]
    conn.executemany("INSERT INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.close()
    caplog.set_level(logging.INFO, logger="nbtrain")
    store = TelemetryStore(db)
    assert LOG_SERVICE_SQLITE_MIGRATED in [getattr(r, "code", None) for r in caplog.records]
    df = store.steps(run)
    assert df["worker_id"].tolist() == ["000001", "000002", "000002"]
    assert df["obs"].tolist() == [7, [0.5, 1], [0.25, 2]]
    assert df["extras"].tolist() == ["{}", '{"a":1}', "{}"]
    assert df["terminated"].tolist() == [False, False, True]
    assert df["truncated"].tolist() == [True, False, False]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert chunk_keys(db, run) == [("000001", 3, 5, 1, None), ("000002", 0, 0, 2, None)]
    assert conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 3
    assert not conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '_v1%'").fetchall()


# -- extras sent as columns -------------------------------------------------------------------

keys = st.text(max_size=8)
values = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
                   st.floats(allow_nan=False), st.text(max_size=5))  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 12).flatmap(
    lambda n: st.tuples(st.just(n), st.dictionaries(keys, st.lists(values, min_size=n, max_size=n),
                                                     max_size=4))))  # fmt: skip
def test_extras_columns_are_stored_as_the_same_dicts_would_be(
    drawn: tuple[int, dict[str, list[Any]]],
) -> None:
    n, columns = drawn
    rows = [(i // 3, i % 3) for i in range(n)]
    dicts = [{k: column[i] for k, column in columns.items()} for i in range(n)]
    as_dicts = event("r", "000001", rows, extras=dicts)
    as_columns = event("r", "000001", rows, extras=[])
    as_columns = msgspec.structs.replace(as_columns, extras_columns=columns)
    assert chunk_rows(as_columns, "000001") == chunk_rows(as_dicts, "000001")
    assert chunk_rows(as_columns, "000001", 1) == chunk_rows(as_dicts, "000001", 1)


def test_extras_columns_that_do_not_fit_refuse_the_event(
    writer: StoreWriter, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="nbtrain")
    run = new_run(writer, "000001")
    rows = [(0, 0), (0, 1)]
    short = msgspec.structs.replace(
        event(run, "000001", rows, extras=[]), extras_columns={"epsilon": [0.5]}
    )
    both = msgspec.structs.replace(event(run, "000001", rows), extras_columns={"e": [1, 2]})
    with pytest.raises(BadSteps, match="extras column 'epsilon' has 1 values for 2 steps"):
        chunk_rows(short, "000001")
    with pytest.raises(BadSteps, match="both extras and extras_columns"):
        chunk_rows(both, "000001")
    good = msgspec.structs.replace(event(run, "000001", [(1, 0)], extras=[]), extras_columns={})
    writer.add_events([short, both, good])
    writer.flush()
    assert writer.failed_writes == 4
    assert chunk_keys(db, run) == [("000001", 1, 0, 1, None)]
    assert TelemetryStore(db).steps(run)["extras"].tolist() == ["{}"]


def _td_rows(lengths: list[int], first_ep: int, data: st.DataObject) -> list[Any]:
    floats = st.floats(allow_nan=False, width=64)
    keys = [(first_ep + e, t) for e, n in enumerate(lengths) for t in range(n)]
    return [
        (ep, t, data.draw(st.integers(0, 3)), data.draw(floats), data.draw(st.booleans()),
         data.draw(st.booleans()), data.draw(st.integers(0, 63)), data.draw(floats),
         data.draw(floats), data.draw(floats))
        for ep, t in keys
    ]  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    first_ep=st.integers(0, 10**6),
    chunk_bytes=st.sampled_from([200, 1_000, CHUNK_BYTES]),
    data=st.data(),
)
def test_step_rows_chunk_as_their_steps_would(
    lengths: list[int], first_ep: int, chunk_bytes: int, data: st.DataObject
) -> None:
    """The kernel chunks a tabular agent's ``StepRows`` straight from its rows: the chunks
    must be exactly those of the same steps as ``Steps`` columns, in both layouts (short
    episodes spanning chunks, long ones a chunk each) and from any row on."""
    rows = _td_rows(lengths, first_ep, data)
    event = StepRows(run_id="r", worker_id="000001", rows=rows)
    start = data.draw(st.integers(0, len(rows)))
    ep, steps = [r[0] for r in rows], [r[1] for r in rows]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chunks_write, "CHUNK_BYTES", chunk_bytes)
        mp.setattr(chunks_write, "_row_bytes", [100])
        direct = td_chunk_rows(event, "000001", ep, steps, start)
        mp.setattr(chunks_write, "_row_bytes", [100])
        via_columns = chunk_rows(event.to_steps(), "000001", start)
    assert direct == via_columns
    assert sum(row[4] for row in direct) == len(rows) - start


@pytest.mark.parametrize(
    "keys",
    [[(0, 0), (0, 2), (0, 1)], [(0, 0), (1, 0), (0, 1)], [(3, 0), (3, 1), (3, 1)]],
    ids=["step-back", "episode-back", "step-repeated"],
)
def test_step_rows_out_of_order_are_refused_as_their_steps_would_be(
    keys: list[tuple[int, int]],
) -> None:
    rows = [(e, t, 0, 0.0, False, False, 0, 0.5, 0.0, T0 + t) for e, t in keys]
    event = StepRows(run_id="r", worker_id="000001", rows=rows)
    ep, steps = [k[0] for k in keys], [k[1] for k in keys]
    with pytest.raises(BadSteps) as direct:
        td_chunk_rows(event, "000001", ep, steps, 1)
    with pytest.raises(BadSteps) as via_columns:
        chunk_rows(event.to_steps(), "000001", 1)
    assert str(direct.value) == str(via_columns.value)
