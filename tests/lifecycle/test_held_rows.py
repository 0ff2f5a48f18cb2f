"""Rows a failed database refused: held, retried, and never written over a newer truth."""

from __future__ import annotations

from pathlib import Path

from nbtrain.dispatch.held import HeldRows, update_worker
from nbtrain.store import schema
from tests.kit.kernel import rows
from tests.kit.runs import add_run, make_db


def _status(db: Path, run_id: str) -> str:
    return str(rows(db, "SELECT status FROM workers WHERE run_id = ? AND worker_id = '000001'",
                    (run_id,))[0][0])  # fmt: skip


def test_a_held_end_is_written_once_the_file_takes_writes(tmp_path: Path) -> None:
    db = make_db(tmp_path / "h.sqlite")
    run_id = add_run(db, workers=1, status="running")
    held = HeldRows(run_id, db)
    held.hold("000001", {"status": "failed", "error": "the disk was full"})
    held.hold_run("failed")
    assert held.has_workers()
    assert [f.status for f in held.fixes()] == ["failed"]
    assert held.retry()
    assert _status(db, run_id) == "failed"
    assert rows(db, "SELECT status FROM runs WHERE run_id = ?", (run_id,)) == [("failed",)]
    assert not held.has_workers()
    assert held.fixes() == []


def test_a_worker_started_again_is_never_overwritten_by_its_held_end(tmp_path: Path) -> None:
    """Regression (review): start() did not drop the held row, so the lease's next retry
    wrote the old 'failed' over the new 'running' and deleted the new steps."""
    db = make_db(tmp_path / "h.sqlite")
    run_id = add_run(db, workers=1, status="running")
    held = HeldRows(run_id, db)
    held.hold("000001", {"status": "failed", "error": "the disk was full"})
    held.hold_run("failed")
    conn = schema.connect(db)
    conn.execute("BEGIN IMMEDIATE")  # the restart commits `running` (as session.start does)
    update_worker(conn, run_id, "000001", status="running")
    conn.execute("COMMIT")
    conn.close()
    held.forget("000001")
    assert held.retry()
    assert _status(db, run_id) == "running"
    assert rows(db, "SELECT status FROM runs WHERE run_id = ?", (run_id,)) == [("running",)]


def test_retrying_never_makes_a_removed_database_again(tmp_path: Path) -> None:
    db = make_db(tmp_path / "h.sqlite")
    run_id = add_run(db, workers=1, status="running")
    held = HeldRows(run_id, db)
    held.hold("000001", {"status": "failed"})
    for path in tmp_path.glob("h.sqlite*"):
        path.unlink()
    assert not held.retry()
    assert not db.exists()
    assert held.has_workers()  # still held for when a file is there again
