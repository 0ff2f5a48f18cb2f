"""launch() is all or nothing, and every status it reports is already in the database."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

import nbtrain
from nbtrain.errors import RunError, SchemaVersionError, StoreAccessError, StoreError
from tests.kit.kernel import Kernel, rows, worker_pids
from tests.kit.processes import pid_alive, wait_for

CONFIG = {"env_id": "FrozenLake-v1", "episodes": 3, "workers": 2}


def _nothing_created(folder: Path, db: Path) -> None:
    assert not (folder / "nbtrain-runs").exists()
    assert not Path(f"{db}-wal").exists()
    assert not Path(f"{db}-shm").exists()


def test_corrupt_database_refused_before_any_file_or_row(db: Path) -> None:
    db.write_bytes(os.urandom(8192))
    with pytest.raises(StoreError, match=str(db)):
        nbtrain.launch(CONFIG, db=db)
    _nothing_created(db.parent, db)


def test_newer_schema_refused_before_any_file_or_row(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE runs (run_id TEXT)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError, match="99"):
        nbtrain.launch(CONFIG, db=db)
    _nothing_created(db.parent, db)
    assert rows(db, "SELECT COUNT(*) FROM runs") == [(0,)]


def test_db_that_is_a_folder_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="folder"):
        nbtrain.launch(CONFIG, db=tmp_path)
    assert not (tmp_path.parent / "nbtrain-runs").exists()


def test_a_missing_db_folder_or_unknown_backend_launches_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nofolder" / "x.sqlite"
    with pytest.raises(StoreAccessError, match=r"the folder of db=.* does not exist; create"):
        nbtrain.launch(CONFIG, db=missing)
    with pytest.raises(StoreAccessError, match=r"is a folder; pass the path of a \.sqlite file"):
        nbtrain.launch(CONFIG, db=tmp_path)  # (docs/store.md's table: StoreAccessError)
    db = tmp_path / "x.sqlite"
    with pytest.raises(ValueError, match="backend must be 'local', 'ray' or a nbtrain Backend"):
        nbtrain.launch(CONFIG, db=db, backend="gpu")
    assert list(tmp_path.iterdir()) == []


def test_a_file_named_nbtrain_runs_is_refused_before_any_row(db: Path) -> None:
    # Regression: the launch recorded a run, then failed making its folder with
    # "FileExistsError: [Errno 17] File exists", leaving a failed run that never ran.
    (db.parent / "nbtrain-runs").write_text("not a folder")
    with pytest.raises(RunError, match="nbtrain-runs is not a folder, but nbtrain keeps"):
        nbtrain.launch(CONFIG, db=db)
    assert (db.parent / "nbtrain-runs").read_text() == "not a folder"
    if db.exists():
        assert nbtrain.TelemetryStore(db).runs().empty


def test_opening_a_folder_as_db_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"is a folder; pass the path of a \.sqlite file"):
        nbtrain.Run.open("01ARZ3NDEKTSV4RRFFQ69G5FAV", db=tmp_path)


def test_status_running_means_the_row_says_running(db: Path) -> None:
    """Right after launch, whatever status() says is what the database says."""
    for _ in range(5):
        run = nbtrain.launch(CONFIG | {"episodes": 50, "step_delay": 0.001}, db=db)
        try:
            statuses = run.status()
            stored = dict(rows(db, "SELECT worker_id, status FROM workers WHERE run_id = ?",
                               (run.run_id,)))  # fmt: skip
            for wid, status in statuses.items():
                if status == "running":
                    assert stored[wid] in ("running", "completed", "stopped", "failed")
            pids = rows(db, "SELECT worker_id, pid, started_at FROM workers WHERE run_id = ?",
                        (run.run_id,))  # fmt: skip
            assert all(pid is not None and started for _, pid, started in pids)
            assert len(run.summary()) == 2
            # A configured worker that has stored nothing yet: an empty frame, not an error.
            frame = run.steps(worker_id=2, ep_index=10_000)
            assert frame.empty
            assert list(frame.columns)[:3] == ["run_id", "worker_id", "ep_index"]
        finally:
            run.stop()


def test_failed_worker_start_stops_the_others_and_ends_the_run_failed(
    db: Path, kernels: list[Kernel]
) -> None:
    # With few file descriptors, the kernel can start a few workers and then not the next.
    kernel = Kernel(db, episodes=100_000, workers=12, delay=0.001, nofile=40)
    kernels.append(kernel)
    assert kernel.first[0] == "ERROR", kernel.first
    assert kernel.first[1] == "RunError"
    message = kernel.first[2]
    (run_id,) = [r[0] for r in rows(db, "SELECT run_id FROM runs")]
    assert run_id in message
    assert "Too many open files" in message
    kernel.rest()
    assert rows(db, "SELECT status FROM runs") == [("failed",)]
    statuses = dict(rows(db, "SELECT worker_id, status FROM workers"))
    assert len(statuses) == 12
    assert set(statuses.values()) <= {"stopped", "failed"}
    assert "failed" in statuses.values()
    errors = [r[0] for r in rows(db, "SELECT error FROM workers WHERE status = 'failed'")]
    assert all(e and "launch failed" in e for e in errors)
    for pid in worker_pids(db, run_id):
        wait_for(lambda pid=pid: not pid_alive(pid), 5, f"worker pid {pid} to exit")


def test_truncated_database_refused(db: Path) -> None:
    db.write_bytes(b"SQLite format 3\x00" + b"\x00" * 50)  # a header and nothing else
    with pytest.raises(StoreError, match=str(db)):
        nbtrain.launch(CONFIG, db=db)
    _nothing_created(db.parent, db)


@pytest.mark.parametrize("run_id", ["not-a-run", "../../escaped", "01J" + "0" * 23 + "/.."])
def test_run_ids_that_are_not_ulids_name_nothing(db: Path, run_id: str) -> None:
    nbtrain.launch(CONFIG | {"episodes": 1}, db=db).wait()
    with pytest.raises(RunError, match="not a run id"):
        nbtrain.Run.open(run_id, db=db)
