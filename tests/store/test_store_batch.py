"""One batch of ops, written by :class:`BatchWriter` in the test's own thread (so which ops
share a transaction is certain): runs of rows go in without a savepoint, and a bad row
among them sends the whole batch through the careful path once."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from tests.kit.events import episode, full_episode

from nbtrain.errors import StoreWriteError
from nbtrain.ids import new_run_id
from nbtrain.store.batch import BatchWriter
from nbtrain.store.bulk import BULK_ROWS
from nbtrain.store.ops import Op
from nbtrain.store.schema import WRITER_CACHE_KIB
from nbtrain.store.writer import acquire_writer
from nbtrain.wire.events import StepRows


@pytest.fixture
def run_db(db: Path) -> tuple[Path, str]:
    """A fresh file holding one run (made through the public writer)."""
    w = acquire_writer(db)
    try:
        run = new_run_id()
        w.create_run(run_id=run, name="t", created_at=time.time(), digest="d", config={})
    finally:
        w.release()
    return db, run


def rows_op(batch: BatchWriter, events: list[Any]) -> Op:
    chunks, episodes, steps, _ = batch.prepare(events)
    return Op(rows=steps + len(episodes), chunks=chunks, episodes=episodes)


def traced(batch: BatchWriter) -> list[str]:
    statements: list[str] = []
    batch.conn.set_trace_callback(statements.append)
    return statements


def query(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def stored(db: Path, run: str) -> tuple[list[int], int]:
    """The run's episode indexes and its number of steps."""
    eps = query(db, "SELECT ep_index FROM episodes WHERE run_id = ? ORDER BY ep_index", run)
    ((steps,),) = query(db, "SELECT COUNT(*) FROM steps WHERE run_id = ?", run)
    return [ep for (ep,) in eps], int(steps)


def test_good_rows_go_in_without_a_savepoint(run_db: tuple[Path, str]) -> None:
    db, run = run_db
    batch = BatchWriter(db)
    batch.open()
    try:
        statements = traced(batch)
        batch.write(
            [rows_op(batch, [*full_episode(run, "000001", 0), *full_episode(run, "000001", 1)])]
        )
        assert [s for s in statements if s.startswith(("SAVEPOINT", "ROLLBACK"))] == []
        assert sum(s.startswith("INSERT INTO episodes") for s in statements) == 2
        assert batch.commits == 1
        assert batch.failed_writes == 0
    finally:
        batch.close()
    assert stored(db, run) == ([0, 1], 6)


def test_a_bad_row_redoes_the_batch_carefully_once(run_db: tuple[Path, str]) -> None:
    db, run = run_db
    batch = BatchWriter(db)
    batch.open()
    try:
        batch.write([rows_op(batch, full_episode(run, "000001", 0))])
        statements = traced(batch)
        calls: list[int] = []

        def call(conn: sqlite3.Connection) -> int:
            calls.append(1)
            conn.execute("UPDATE runs SET name = 'renamed' WHERE run_id = ?", (run,))
            return 42

        future: Future[int] = Future()
        batch.write(
            [
                rows_op(batch, full_episode(run, "000001", 1)),
                Op(rows=1, call=call, label="rename", future=future),
                # Episode 0 again (its key is taken: a bad row) between two good ones.
                rows_op(
                    batch,
                    [
                        *full_episode(run, "000001", 2),
                        episode(run, "000001", 0),
                        *full_episode(run, "000001", 3),
                    ],
                ),
            ]
        )
        assert future.result(0) == 42
        assert calls == [1, 1]  # run in the first attempt, rolled back, run again
        assert batch.failed_writes == 1  # the bad row, counted once
        assert batch.commits == 2
        assert statements.count("ROLLBACK") == 1
        assert "SAVEPOINT rows" in statements
    finally:
        batch.close()
    assert stored(db, run) == ([0, 1, 2, 3], 12)
    assert query(db, "SELECT name FROM runs") == [("renamed",)]


def test_a_storage_failure_in_the_fast_path_is_not_retried(run_db: tuple[Path, str]) -> None:
    """Only a bad row sends the batch to the careful path; a full file (SQLite's own page
    limit, hit inside a multi-row INSERT) stops the writer with nothing committed."""
    db, run = run_db
    batch = BatchWriter(db)
    batch.open()
    try:
        pages = batch.conn.execute("PRAGMA page_count").fetchone()[0]
        batch.conn.execute(f"PRAGMA max_page_count = {pages}")
        statements = traced(batch)
        events = [e for ep in range(300) for e in full_episode(run, "000001", ep)]
        with pytest.raises(StoreWriteError, match="full"):
            batch.write([rows_op(batch, events)])
        assert any(s.startswith("INSERT INTO") for s in statements)  # it got that far
        assert "SAVEPOINT rows" not in statements
    finally:
        batch.close()
    assert stored(db, run) == ([], 0)


def test_step_rows_given_to_the_writer_are_stored_as_their_steps(run_db: tuple[Path, str]) -> None:
    """``StepRows`` is the wire's form of a tabular agent's steps; the public writer takes
    it too, as the kernel's ingest does."""
    db, run = run_db
    rows = [(0, t, 1, 0.0, False, t == 2, t + 4, 0.5, -0.25 * t, 10.0 + t) for t in range(3)]
    w = acquire_writer(db)
    try:
        w.add_events(
            [
                StepRows(run_id=run, worker_id="000001", rows=rows),
                episode(run, "000001", 0, length=3),
            ]
        )
        w.flush()
        assert w.failed_writes == 0
    finally:
        w.release()
    sql = "SELECT step_index, obs, truncated, extras, ts FROM steps ORDER BY step_index"
    assert query(db, sql) == [
        (0, 4, 0, '{"epsilon":0.5,"td_error":-0.0}', 10.0),
        (1, 5, 0, '{"epsilon":0.5,"td_error":-0.25}', 11.0),
        (2, 6, 1, '{"epsilon":0.5,"td_error":-0.5}', 12.0),
    ]


def test_many_rows_go_in_as_multi_row_statements(run_db: tuple[Path, str]) -> None:
    db, run = run_db
    n = 2 * BULK_ROWS + 5  # two whole statements and a remainder
    batch = BatchWriter(db)
    batch.open()
    try:
        statements = traced(batch)
        batch.write([rows_op(batch, [episode(run, "000001", ep) for ep in range(n)])])
        bulk = [s for s in statements if s.startswith("INSERT OR FAIL INTO episodes")]
        single = [s for s in statements if s.startswith("INSERT INTO episodes")]
        assert (len(bulk), len(single)) == (2, 5)
        assert batch.failed_writes == 0
    finally:
        batch.close()
    got = query(db, "SELECT ep_index, episode_id, length FROM episodes ORDER BY ep_index")
    assert [(e, i.rsplit("-ep", 1)[1], length) for e, i, length in got] == [
        (ep, f"{ep:06d}", 3) for ep in range(n)
    ]


def test_a_bad_row_inside_a_multi_row_statement_costs_only_itself(run_db: tuple[Path, str]) -> None:
    db, run = run_db
    n = BULK_ROWS + 10
    batch = BatchWriter(db)
    batch.open()
    try:
        batch.write([rows_op(batch, [episode(run, "000001", 7)])])
        events = [episode(run, "000001", ep) for ep in range(n)]  # 7 is taken already
        batch.write([rows_op(batch, events)])
        assert batch.failed_writes == 1
    finally:
        batch.close()
    assert stored(db, run)[0] == list(range(n))


def test_rows_of_unequal_width_are_never_shifted_into_each_other(run_db: tuple[Path, str]) -> None:
    """Rows are flattened into one parameter list per statement: a short row followed by a
    long one would move values into the wrong columns. Such a run is not bulk-inserted; the
    bad rows fail alone."""
    db, run = run_db
    batch = BatchWriter(db)
    batch.open()
    try:
        events = [episode(run, "000001", ep) for ep in range(BULK_ROWS)]
        _, episodes, _, _ = batch.prepare(events)
        episodes[3] = episodes[3][:-1]  # one value short
        episodes[4] = (*episodes[4], "extra")  # one value long
        batch.write([Op(rows=len(episodes), episodes=episodes)])
        assert batch.failed_writes == 2
    finally:
        batch.close()
    rows = query(db, "SELECT ep_index, length, extras FROM episodes ORDER BY ep_index")
    assert rows == [(ep, 3, '{"epsilon":0.1}') for ep in range(BULK_ROWS) if ep not in (3, 4)]


def test_the_writer_keeps_a_page_cache_for_several_workers(run_db: tuple[Path, str]) -> None:
    """SQLite's default (2 MB: 31 pages of 64 KiB) made the writer read back and spill
    pages with a few workers; its connection asks for WRITER_CACHE_KIB instead."""
    db, _ = run_db
    batch = BatchWriter(db)
    batch.open()
    try:
        assert batch.conn.execute("PRAGMA cache_size").fetchone() == (-WRITER_CACHE_KIB,)
        assert WRITER_CACHE_KIB >= 8 * 1024
    finally:
        batch.close()
    reader = sqlite3.connect(db)  # a setting of the writer's connection, not of the file
    try:
        assert reader.execute("PRAGMA cache_size").fetchone() != (-WRITER_CACHE_KIB,)
    finally:
        reader.close()
