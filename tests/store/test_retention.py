"""delete_run, archive_run, disk_usage, vacuum: every call checked against row counts read
with plain sqlite3, and the run folder on disk."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from tests.kit.runs import TABLES, add_run, counts, expected, make_db, sql

import nbtrain
from nbtrain.cli import main
from nbtrain.errors import (
    ReadOnlyStoreError,
    RunError,
    SchemaVersionError,
    StoreError,
    UnknownRunError,
)
from nbtrain.store import SCHEMA_VERSION, TelemetryStore


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "src.sqlite")


def folder(db: Path, run_id: str) -> Path:
    return db.parent / "nbtrain-runs" / run_id


# -- delete ------------------------------------------------------------------------------------
def test_delete_removes_every_row_in_every_table_and_the_folder_only_of_that_run(
    db: Path,
) -> None:
    gone = add_run(db, workers=3, episodes=4)
    kept = add_run(db, workers=2, episodes=5)
    # A table added later (e.g. a lease) is covered because it has a run_id column.
    con = sqlite3.connect(db)
    with con:
        con.execute("CREATE TABLE leases (run_id TEXT NOT NULL, owner INTEGER)")
        con.executemany("INSERT INTO leases VALUES (?, ?)", [(gone, 1), (gone, 2), (kept, 3)])
    con.close()
    assert counts(db, gone) == expected(3, 4)

    result = TelemetryStore(db).delete_run(gone)

    assert result == {**expected(3, 4), "leases": 2}
    assert counts(db, gone, (*TABLES, "leases")) == dict.fromkeys((*TABLES, "leases"), 0)
    assert counts(db, kept, (*TABLES, "leases")) == {**expected(2, 5), "leases": 1}
    assert not folder(db, gone).exists()
    assert not any(p.name.startswith(".") for p in (db.parent / "nbtrain-runs").iterdir())
    assert len(list(folder(db, kept).iterdir())) == 2
    with pytest.raises(UnknownRunError):
        TelemetryStore(db).workers(gone)


def test_delete_unknown_run_or_bad_id_changes_nothing(db: Path) -> None:
    kept = add_run(db)
    store = TelemetryStore(db)
    with pytest.raises(UnknownRunError, match="no run '01ARZ3NDEKTSV4RRFFQ69G5FAV'"):
        store.delete_run("01ARZ3NDEKTSV4RRFFQ69G5FAV")
    with pytest.raises(UnknownRunError):
        store.delete_run("../../etc")
    with pytest.raises(TypeError, match="run_id must be a str"):
        store.delete_run(42)  # type: ignore[arg-type]
    assert counts(db, kept) == expected(2, 3)


def test_delete_a_non_ulid_run_never_builds_a_path(db: Path) -> None:
    run_id = add_run(db, run_id="my-run", workers=1, episodes=2)
    decoy = db.parent / "nbtrain-runs" / run_id
    decoy.mkdir(parents=True)
    assert counts(db, run_id) == expected(1, 2)

    assert TelemetryStore(db).delete_run(run_id) == expected(1, 2)
    assert counts(db, run_id) == dict.fromkeys(TABLES, 0)
    assert decoy.is_dir()  # a non-ULID id names no folder, so nothing was removed


def test_delete_refuses_a_run_with_live_workers(tmp_path: Path) -> None:
    db = tmp_path / "live.sqlite"
    run = nbtrain.launch(
        {"env_id": "FrozenLake-v1", "episodes": 5000, "step_delay": 0.01, "workers": 2}, db=db
    )
    try:
        store = TelemetryStore(db)
        live = rf"run {run.run_id} has live workers: 000001 \((pending|running)\)"
        with pytest.raises(RunError, match=live):
            store.delete_run(run.run_id)  # at once: the in-memory statuses say so
        deadline = time.monotonic() + 30
        while sql(db, "SELECT COUNT(*) FROM workers WHERE status = 'running'") != [(2,)]:
            assert time.monotonic() < deadline, "the workers never became running"
            time.sleep(0.05)
        with pytest.raises(RunError, match=live):
            store.delete_run(run.run_id)
        with pytest.raises(RunError, match="live workers"):
            store.archive_run(run.run_id, to=tmp_path / "a.sqlite")
        assert counts(db, run.run_id)["workers"] == 2
        assert counts(db, run.run_id)["runs"] == 1
        assert folder(db, run.run_id).is_dir()
    finally:
        run.stop()
    # Once stopped, the same call goes through.
    result = TelemetryStore(db).delete_run(run.run_id)
    assert result["workers"] == 2
    assert counts(db, run.run_id) == dict.fromkeys(TABLES, 0)


def test_run_open_in_the_launching_process_knows_the_run_is_gone(tmp_path: Path) -> None:
    """Regression: the process that launched a run kept finding its session after the run
    was archived or deleted, and ``Run.open`` reported it ``completed``."""
    db, archive = tmp_path / "src.sqlite", tmp_path / "archive.sqlite"
    run = nbtrain.launch({"env_id": "FrozenLake-v1", "episodes": 20, "workers": 2}, db=db)
    assert set(run.wait(timeout=60).values()) == {"completed"}
    assert set(nbtrain.Run.open(run.run_id, db=db).status().values()) == {"completed"}
    TelemetryStore(db).archive_run(run.run_id, to=archive)
    with pytest.raises(UnknownRunError, match=run.run_id):
        nbtrain.Run.open(run.run_id, db=db)
    moved = nbtrain.Run.open(run.run_id, db=archive)
    assert len(moved.episodes()) == 40
    TelemetryStore(archive).delete_run(run.run_id)
    with pytest.raises(UnknownRunError, match=run.run_id):
        nbtrain.Run.open(run.run_id, db=archive)
    # Regression (QA): the launching handle itself still said "completed" for a run that
    # was no longer in its database.
    with pytest.raises(UnknownRunError, match=run.run_id):
        run.status()
    with pytest.raises(UnknownRunError, match=run.run_id):
        _ = run.run_status


def test_delete_fails_whole_when_the_folder_cannot_be_moved(db: Path, ro_remount: object) -> None:
    run_id = add_run(db, workers=2, episodes=3)
    runs_dir = db.parent / "nbtrain-runs"
    ro_remount(runs_dir)  # type: ignore[operator]
    with pytest.raises(StoreError, match="the run is unchanged"):
        TelemetryStore(db).delete_run(run_id)
    assert counts(db, run_id) == expected(2, 3)
    assert len(list(folder(db, run_id).iterdir())) == 2


# -- archive -----------------------------------------------------------------------------------
def test_archive_moves_rows_and_folder_and_appends(db: Path, tmp_path: Path) -> None:
    a = add_run(db, workers=2, episodes=3)
    b = add_run(db, workers=4, episodes=2, folder_bytes=1000)
    kept = add_run(db, workers=1, episodes=1)
    (tmp_path / "store").mkdir()
    archive = tmp_path / "store" / "archive.sqlite"
    store = TelemetryStore(db)
    summary_a = store.run_summary(a)

    assert store.archive_run(a, to=archive) == expected(2, 3)
    assert store.archive_run(b, to=str(archive)) == expected(4, 2)  # appending works

    for run_id, shape in ((a, (2, 3)), (b, (4, 2))):
        assert counts(archive, run_id) == expected(*shape)
        assert counts(db, run_id) == dict.fromkeys(TABLES, 0)
        assert not folder(db, run_id).exists()
        assert folder(archive, run_id).is_dir()
    assert (folder(archive, b) / "policy-000001.pkl").stat().st_size == 1000
    assert counts(db, kept) == expected(1, 1)
    # An ordinary nbtrain database of the same schema version: Run.open works on it.
    assert sql(archive, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    opened = nbtrain.Run.open(a, db=archive)
    assert opened.summary().equals(summary_a)
    assert len(opened.steps()) == 2 * 3 * 4


def test_archive_beside_the_database_keeps_the_shared_run_folder(db: Path) -> None:
    run_id = add_run(db, workers=1, episodes=2)
    archive = db.parent / "archive.sqlite"
    assert TelemetryStore(db).archive_run(run_id, to=archive) == expected(1, 2)
    assert counts(db, run_id) == dict.fromkeys(TABLES, 0)
    assert counts(archive, run_id) == expected(1, 2)
    assert len(list(folder(archive, run_id).iterdir())) == 1  # same folder, left in place


def test_archive_refusals_leave_both_files_unchanged(db: Path, tmp_path: Path) -> None:
    run_id = add_run(db)
    store = TelemetryStore(db)
    archive = tmp_path / "arch.sqlite"
    (tmp_path / "other").mkdir()
    other = make_db(tmp_path / "other" / "x.sqlite")
    add_run(other, run_id=run_id)  # the same run id is already in that archive
    with pytest.raises(RunError, match="already archived there"):
        store.archive_run(run_id, to=other)  # its folder is there
    shutil.rmtree(folder(other, run_id))
    with pytest.raises(RunError, match="already in archive"):
        store.archive_run(run_id, to=other)  # its rows are there
    assert counts(other, run_id) == expected(2, 3)
    with pytest.raises(StoreError, match="into itself"):
        store.archive_run(run_id, to=db)
    with pytest.raises(StoreError, match="is a folder"):
        store.archive_run(run_id, to=tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        store.archive_run(run_id, to=tmp_path / "nope" / "a.sqlite")
    with pytest.raises(UnknownRunError):
        store.archive_run("01ARZ3NDEKTSV4RRFFQ69G5FAV", to=archive)
    with pytest.raises(TypeError, match="to= must be a path"):
        store.archive_run(run_id, to=3)  # type: ignore[arg-type]
    newer = tmp_path / "other" / "newer.sqlite"
    con = sqlite3.connect(newer)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.execute("CREATE TABLE runs (run_id TEXT)")
    con.close()
    with pytest.raises(SchemaVersionError):
        store.archive_run(run_id, to=newer)
    assert counts(db, run_id) == expected(2, 3)
    assert folder(db, run_id).is_dir()


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_archive_into_a_journal_file_of_the_source_is_refused(db: Path, suffix: str) -> None:
    # Regression: into "<db>-wal", SQLite built the archive inside the source's WAL and
    # deleted it when the source closed: the run was then in neither file (exit 0).
    run_id = add_run(db, workers=2, episodes=3)
    side = db.with_name(db.name + suffix)
    with pytest.raises(StoreError, match=r"journal file of src\.sqlite"):
        TelemetryStore(db).archive_run(run_id, to=side)
    assert counts(db, run_id) == expected(2, 3)


def test_archive_read_back_short_of_what_was_copied_leaves_the_run_whole(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive is counted again through a connection of its own before the source
    deletes anything (a copy that vanished after its commit is simulated: one row more
    claimed copied than the archive holds)."""
    from nbtrain.store import archive as archive_module

    run_id = add_run(db, workers=2, episodes=3)
    copy = archive_module._copy_rows

    def claims_one_more(source: Path, dest: Path, rid: str) -> dict[str, int]:
        copied = copy(source, dest, rid)
        return {**copied, "episodes": copied["episodes"] + 1}

    monkeypatch.setattr(archive_module, "_copy_rows", claims_one_more)
    (tmp_path / "a").mkdir()
    archive = tmp_path / "a" / "arch.sqlite"
    with pytest.raises(StoreError, match="the run is unchanged"):
        TelemetryStore(db).archive_run(run_id, to=archive)
    assert counts(db, run_id) == expected(2, 3)
    assert sorted(archive.parent.iterdir()) == []  # the archive file this call made is gone


def test_archive_whose_counts_do_not_verify_leaves_the_run_whole(db: Path, tmp_path: Path) -> None:
    """A trigger in the archive eats one copied episode: the count check catches it."""
    run_id = add_run(db, workers=2, episodes=3)
    (tmp_path / "a").mkdir()
    archive = make_db(tmp_path / "a" / "trap.sqlite")
    con = sqlite3.connect(archive)
    con.execute(
        "CREATE TRIGGER eat AFTER INSERT ON episodes WHEN NEW.ep_index = 1 "
        "BEGIN DELETE FROM episodes WHERE rowid = NEW.rowid; END"
    )
    con.close()
    with pytest.raises(StoreError, match=r"after copying .*; the run is unchanged"):
        TelemetryStore(db).archive_run(run_id, to=archive)
    assert counts(db, run_id) == expected(2, 3)
    assert counts(archive, run_id) == dict.fromkeys(TABLES, 0)
    assert not folder(archive, run_id).exists()
    assert len(list(folder(db, run_id).iterdir())) == 2


def test_archive_to_an_unwritable_place_leaves_the_run_whole(
    db: Path, tmp_path: Path, readonly_dir: object
) -> None:
    run_id = add_run(db, workers=2, episodes=3)
    place = readonly_dir(tmp_path / "ro")  # type: ignore[operator]
    with pytest.raises(StoreError, match="archive"):
        TelemetryStore(db).archive_run(run_id, to=place / "archive.sqlite")
    assert counts(db, run_id) == expected(2, 3)
    assert len(list(folder(db, run_id).iterdir())) == 2


def beside(place: Path) -> list[str]:
    """Everything under ``place`` but SQLite's ``-wal``/``-shm`` (which reading makes)."""
    names = (str(p.relative_to(place)) for p in place.rglob("*"))
    return sorted(n for n in names if not n.endswith(("-wal", "-shm")))


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {t: sorted(sql(db, f'SELECT * FROM "{t}"'), key=repr) for t in TABLES}


def archive_place(tmp_path: Path, existing: bool) -> tuple[Path, Any]:
    """An archive path in a folder of its own, holding another run if ``existing``; and a
    snapshot of that folder and of the archive's rows, to compare after a failure."""
    (tmp_path / "cold").mkdir()
    archive = tmp_path / "cold" / "archive.sqlite"
    if existing:
        add_run(make_db(archive), workers=1, episodes=2)
    return archive, (beside(archive.parent), dump(archive) if existing else None)


@pytest.mark.parametrize("existing", [False, True], ids=["new-archive", "existing-archive"])
@pytest.mark.parametrize("read_only", ["runs-folder", "database-file"])
def test_archive_from_a_source_that_cannot_be_changed_is_refused_before_writing(
    db: Path, tmp_path: Path, ro_remount: Any, read_only: str, existing: bool
) -> None:
    """Regression: with the source's ``nbtrain-runs`` folder or its database file read-only,
    the run was copied, deleting it from the source failed, and a new empty archive file and
    runs folder were left behind (a duplicate, had taking the copy back failed too). Now the
    source is checked first and nothing is written. The read-only file or folder is real:
    a read-only bind mount as root, where chmod stops no write; chmod otherwise."""
    run_id = add_run(db, workers=2, episodes=3)
    archive, snapshot = archive_place(tmp_path, existing)
    target = ro_remount(db.parent / "nbtrain-runs" if read_only == "runs-folder" else db)
    with pytest.raises(ReadOnlyStoreError) as info:
        TelemetryStore(db).archive_run(run_id, to=archive)
    assert f"{target} cannot be written" in str(info.value)
    assert f"nothing was written to {archive}; the run is unchanged" in str(info.value)
    assert counts(db, run_id) == expected(2, 3)
    assert len(list(folder(db, run_id).iterdir())) == 2
    assert (beside(archive.parent), dump(archive) if existing else None) == snapshot


@pytest.mark.parametrize("existing", [False, True], ids=["new-archive", "existing-archive"])
def test_a_failure_after_the_copy_takes_back_everything_the_call_made(
    db: Path, tmp_path: Path, existing: bool
) -> None:
    """Regression: when deleting the run from the source failed after the copy, the archive
    file and the runs folder this call had created were left behind, empty. The fault is
    real and passes every check made up front: another connection holds the source's write
    lock past SQLite's busy timeout (5 s), as a busy writer could."""
    run_id = add_run(db, workers=2, episodes=3)
    archive, snapshot = archive_place(tmp_path, existing)
    store = TelemetryStore(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match=r"locked; the run is unchanged$"):
            store.archive_run(run_id, to=archive)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert counts(db, run_id) == expected(2, 3)
    assert len(list(folder(db, run_id).iterdir())) == 2
    assert (beside(archive.parent), dump(archive) if existing else None) == snapshot
    assert store.archive_run(run_id, to=archive) == expected(2, 3)  # once the lock is free


def test_archive_beside_the_database_needs_no_writable_runs_folder(
    db: Path, ro_remount: Any
) -> None:
    """The shared run folder stays where it is, so a read-only one does not stop it."""
    run_id = add_run(db, workers=1, episodes=2)
    ro_remount(db.parent / "nbtrain-runs")
    assert TelemetryStore(db).archive_run(run_id, to=db.parent / "a.sqlite") == expected(1, 2)
    assert counts(db, run_id) == dict.fromkeys(TABLES, 0)
    assert len(list(folder(db, run_id).iterdir())) == 1


# -- usage and vacuum --------------------------------------------------------------------------
def test_disk_usage_matches_plain_sql_per_worker(db: Path) -> None:
    small = add_run(db, workers=2, episodes=2, steps=3)
    big = add_run(db, workers=3, episodes=4, steps=10, pad=200)
    usage = TelemetryStore(db).disk_usage()
    assert list(usage.columns) == ["run_id", "worker_id", "episodes", "steps", "bytes"]
    assert str(usage["worker_id"].dtype) == "category"
    assert usage["bytes"].is_monotonic_decreasing
    assert set(usage["run_id"][:3]) == {big}  # the padded run is the largest
    for run_id in (small, big):
        mine = usage[usage["run_id"] == run_id].astype({"worker_id": str}).set_index("worker_id")
        truth = sql(
            db,
            "SELECT worker_id, COUNT(*), (SELECT SUM(n_steps) FROM step_chunks c "
            "WHERE c.run_id = e.run_id AND c.worker_id = e.worker_id), "
            "(SELECT SUM(length(rows)) FROM step_chunks c "
            "WHERE c.run_id = e.run_id AND c.worker_id = e.worker_id) "
            "FROM episodes e WHERE run_id = ? GROUP BY worker_id",
            (run_id,),
        )
        assert len(mine) == len(truth)
        for wid, n_eps, n_steps, chunk_bytes in truth:
            assert mine.loc[wid, "episodes"] == n_eps
            assert mine.loc[wid, "steps"] == n_steps
            assert chunk_bytes < mine.loc[wid, "bytes"] < 2 * chunk_bytes + 1000


def test_disk_usage_of_an_empty_store(db: Path) -> None:
    usage = TelemetryStore(db).disk_usage()
    assert len(usage) == 0
    assert list(usage.columns) == ["run_id", "worker_id", "episodes", "steps", "bytes"]


def test_delete_frees_pages_and_vacuum_gives_them_back(db: Path) -> None:
    add_run(db, workers=1, episodes=2)
    big = add_run(db, workers=4, episodes=50, steps=50, pad=1000)
    store = TelemetryStore(db)
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    size_full = db.stat().st_size

    store.delete_run(big)
    free = sql(db, "PRAGMA freelist_count")[0][0]
    assert free > 0  # the space is reusable inside the file
    result = store.vacuum()
    assert sql(db, "PRAGMA freelist_count") == [(0,)]
    size_vacuumed = db.stat().st_size
    assert size_vacuumed < size_full / 4
    assert result["after"] == size_vacuumed < result["before"]
    print(f"file {size_full} B full, {free} free pages after delete, {size_vacuumed} B vacuumed")


# -- the edges: a worker started meanwhile, a linked folder, a folder that cannot go ----------
def test_a_worker_started_between_the_check_and_the_transaction_is_refused(db: Path) -> None:
    from nbtrain.store import retention, schema

    run_id = add_run(db, workers=2, episodes=1)
    store = TelemetryStore(db)
    con = schema.connect(db)
    try:
        before = retention.refuse_live(store, run_id, con)  # all completed: allowed
        # Now a restart commits (another process, in real life): worker 000002 runs.
        writer = sqlite3.connect(db)
        with writer:
            writer.execute(
                "UPDATE workers SET status = 'running', pid = 4242 WHERE worker_id = '000002'"
            )
        writer.close()
        with pytest.raises(RunError, match=r"worker 000002 .* was started meanwhile"):
            retention.delete_rows(con, db, run_id, before)
    finally:
        con.close()
    assert counts(db, run_id) == expected(2, 1)
    assert folder(db, run_id).is_dir()


def test_a_symlinked_run_folder_is_unlinked_never_followed(db: Path, tmp_path: Path) -> None:
    run_id = add_run(db, workers=1, episodes=1)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    shutil.rmtree(folder(db, run_id))
    folder(db, run_id).symlink_to(outside)
    TelemetryStore(db).delete_run(run_id)
    assert not folder(db, run_id).is_symlink()
    assert (outside / "keep.txt").read_text() == "mine"


def test_a_folder_that_cannot_be_removed_after_the_commit_is_logged(
    tmp_path: Path, ro_remount: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from nbtrain.store import runfolder

    stuck = tmp_path / "stuck"
    stuck.mkdir()
    (stuck / "inner").mkdir()
    (stuck / "inner" / "f").write_text("x")
    ro_remount(stuck)
    caplog.set_level("WARNING", logger="nbtrain")
    runfolder.remove(stuck / "inner", "RUN")  # never raises: the rows are already gone
    assert (stuck / "inner" / "f").exists()
    assert any("could not remove" in r.getMessage() for r in caplog.records)


def test_a_read_only_database_refuses_delete_archive_and_vacuum_but_reports_usage(
    tmp_path: Path, ro_remount: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    place = tmp_path / "ro"
    place.mkdir()
    db = make_db(place / "frozen.sqlite")
    run_id = add_run(db, workers=2, episodes=2)
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    ro_remount(place)
    store = TelemetryStore(db)
    assert len(store.disk_usage()) == 2
    with pytest.raises(StoreError, match="the run is unchanged"):
        store.delete_run(run_id)
    (tmp_path / "cold").mkdir()
    with pytest.raises(StoreError, match="the run is unchanged"):
        store.archive_run(run_id, to=tmp_path / "cold" / "a.sqlite")
    with pytest.raises(StoreError, match="cannot vacuum"):
        store.vacuum()
    assert counts(db, run_id) == expected(2, 2)
    assert not (tmp_path / "cold" / "a.sqlite").exists()  # refused before any archive write
    assert not (tmp_path / "cold" / "nbtrain-runs" / run_id).exists()
    # Regression: `nbtrain du` printed both tables, then a traceback (exit 1) reading the
    # free pages through a connection that needed a -shm file.
    assert main(["du", "--db", str(db)]) == 0
    assert "free" in capsys.readouterr().out


def test_rm_names_a_run_folder_left_on_disk_after_the_rows_are_gone(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rows are deleted and committed; a part of the folder that cannot be removed
    (here a read-only mount inside it) is named on stderr, not only in the log."""
    run_id = add_run(db)
    stuck = folder(db, run_id) / "stuck"
    stuck.mkdir()
    (stuck / "f").write_text("x")
    left = folder(db, run_id).with_name(f".removing-{run_id}")
    mounted = (
        os.geteuid() == 0
        and subprocess.run(["mount", "--bind", str(stuck), str(stuck)]).returncode == 0
    )
    try:
        if mounted:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(stuck)], check=True)
        else:
            stuck.chmod(0o500)
        assert main(["rm", run_id, "--yes", "--db", str(db)]) == 0
        err = capsys.readouterr().err
        assert f"could not remove {left}" in err
        assert "delete it by hand" in err
        assert counts(db, run_id) == dict.fromkeys(TABLES, 0)
        assert (left / "stuck" / "f").exists()
    finally:
        for place in (left / "stuck", stuck):
            if mounted:
                subprocess.run(["umount", "-l", str(place)], capture_output=True)
            elif place.exists():
                place.chmod(0o700)
    assert main(["rm", add_run(db), "--yes", "--db", str(db)]) == 0
    assert "warning" not in capsys.readouterr().err  # only when something is left
