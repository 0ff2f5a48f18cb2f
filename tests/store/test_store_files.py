"""Bad database files get one clear error naming the path; read-only ones can be read.

Permissions are made for real: as root (who ignores file modes) the checks run in a child
process as user ``nobody``; a read-only mount is a real tmpfs remounted read-only.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.kit.events import full_episode

from nbtrain.errors import (
    CorruptStoreError,
    ReadOnlyStoreError,
    SchemaVersionError,
    StoreAccessError,
    StoreError,
)
from nbtrain.ids import new_run_id
from nbtrain.store import SCHEMA_VERSION, TelemetryStore, ensure_writable
from nbtrain.store.writer import acquire_writer

SRC = str(Path(__file__).resolve().parents[2] / "src")
IS_ROOT = os.geteuid() == 0
NOBODY = 65534


def make_store(path: Path, episodes: int = 30) -> str:
    """A real store with one run; checkpointed, so the file holds everything (no WAL)."""
    writer = acquire_writer(path)
    run = new_run_id()
    writer.create_run(run_id=run, name="n", created_at=time.time(), digest="d", config={})
    writer.upsert_worker(run, 1, status="completed")
    for ep in range(episodes):
        writer.add_events(full_episode(run, "000001", ep, n=200))
    writer.release()
    return run


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def one_line(exc: BaseException, path: Path) -> str:
    text = str(exc)
    assert "\n" not in text
    assert str(path) in text
    return text


@pytest.fixture
def good(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "good.sqlite"
    return path, make_store(path)


def refuse(path: Path, error: type[StoreError], match: str) -> None:
    """Both the reader and the pre-launch check refuse ``path`` and leave its folder as is."""
    before = listing(path.parent)
    for opener in (TelemetryStore, ensure_writable, acquire_writer):
        with pytest.raises(error, match=match) as info:
            opener(path)
        one_line(info.value, path)
        assert listing(path.parent) == before, opener


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.sqlite"
    path.write_bytes(os.urandom(100_000))
    refuse(path, CorruptStoreError, "not an SQLite database")


@pytest.mark.parametrize(
    "ddl",
    [
        ["CREATE TABLE users (id INTEGER, name TEXT)"],
        # another application's tables that happen to bear nbtrain's names
        ["CREATE TABLE runs (name TEXT, started TEXT)"],
        ["CREATE TABLE episodes (id INTEGER, score REAL)", "CREATE TABLE meta (k, v)"],
        # nbtrain's key columns, and one nbtrain never wrote (the upgrade would drop it)
        ["CREATE TABLE runs (run_id TEXT, owner_email TEXT)"],
        # a schema version of its own (review: it was taken for nbtrain's)
        ["CREATE TABLE users (id INTEGER, name TEXT)", "PRAGMA user_version = 3"],
    ],
)
def test_another_application_s_database_is_refused_and_left_unchanged(
    tmp_path: Path, ddl: list[str]
) -> None:
    """Regression: a file of other tables got nbtrain's tables added and was switched to
    WAL by a mere read; one with a ``runs`` table failed as "no such column: created_at"."""
    path = tmp_path / "theirs.sqlite"
    conn = sqlite3.connect(path)
    for sql in ddl:
        conn.execute(sql)
    conn.execute(f"INSERT INTO {ddl[0].split()[2]} VALUES (1, 'x')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    refuse(path, StoreError, "is an SQLite database but not an nbtrain store")
    assert path.read_bytes() == before
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


def test_shorter_than_a_header(tmp_path: Path, good: tuple[Path, str]) -> None:
    path = tmp_path / "short.sqlite"
    path.write_bytes(good[0].read_bytes()[:50])
    refuse(path, CorruptStoreError, "not an SQLite database")


def test_truncated(tmp_path: Path, good: tuple[Path, str]) -> None:
    data = good[0].read_bytes()
    path = tmp_path / "cut.sqlite"
    path.write_bytes(data[: len(data) // 2])
    refuse(path, CorruptStoreError, "truncated")


def test_damaged_pages_fail_reads_clearly(good: tuple[Path, str]) -> None:
    path, run = good
    data = bytearray(path.read_bytes())
    page = 65536
    data[2 * page : len(data)] = os.urandom(len(data) - 2 * page)  # keep the schema page
    path.write_bytes(bytes(data))
    store = TelemetryStore(path)  # the header and the schema are intact
    for read in (store.episodes, store.steps):
        with pytest.raises(CorruptStoreError, match="damaged") as info:
            read(run)
        one_line(info.value, path)


def test_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "folder.sqlite"
    path.mkdir()
    refuse(path, StoreAccessError, "is a folder")
    with pytest.raises(StoreError) as info:
        TelemetryStore(path)
    assert "disk I/O" not in str(info.value)


def test_a_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "db.sqlite"
    refuse(path, StoreAccessError, "does not exist")
    assert not path.parent.exists()


def test_newer_schema_leaves_no_wal_or_shm(good: tuple[Path, str]) -> None:
    path, _ = good
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    assert listing(path.parent) == ["good.sqlite"]
    refuse(path, SchemaVersionError, "upgrade nbtrain")


def test_pre_launch_check_accepts_new_and_current_files_without_writing(
    tmp_path: Path, good: tuple[Path, str]
) -> None:
    new = tmp_path / "sub" / "new.sqlite"
    new.parent.mkdir()
    assert ensure_writable(new) == new.resolve()
    assert sqlite3.connect(new).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    path, run = good
    before = path.read_bytes()
    assert ensure_writable(path) == path
    assert path.read_bytes() == before
    assert len(TelemetryStore(path).episodes(run)) == 30


# -- permissions: as another user ------------------------------------------------------------

CHILD = """
import json, os, sys, tempfile, time
from nbtrain.errors import StoreError
from nbtrain.store import TelemetryStore, ensure_writable
from nbtrain.store.writer import acquire_writer

def read(path):
    store = TelemetryStore(path)
    out = {"episodes": len(store.episodes())}
    with store.snapshot() as s:
        out["steps"] = len(s.steps(s.runs()["run_id"][0]))
    return out

# Load every module while still root: the interpreter lives in a folder only root may read.
warm = os.path.join(tempfile.mkdtemp(), "warm.sqlite")
w = acquire_writer(warm)
w.create_run(run_id="01JWARM", name="", created_at=time.time(), digest="", config={})
w.release()
read(warm)
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
path = sys.argv[1]
out = {}
try:
    out.update(read(path))
except StoreError as exc:
    out["read_error"] = [type(exc).__name__, str(exc)]
try:
    ensure_writable(path)
    out["writable"] = True
except StoreError as exc:
    out["write_error"] = [type(exc).__name__, str(exc)]
print(json.dumps(out))
""".replace("NOBODY", str(NOBODY))


def as_other_user(path: Path) -> dict[str, object]:
    """Open ``path`` in a child process that file modes apply to (as ``nobody`` when root)."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user can enter (pytest's tmp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="nbtrain-perm-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for root, dirs, _ in os.walk(folder):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        shutil.rmtree(folder)


def store_for_other_user(shared_dir: Path, file_mode: int, dir_mode: int) -> Path:
    folder = shared_dir / "runs"
    folder.mkdir()
    path = folder / "db.sqlite"
    make_store(path)
    path.chmod(file_mode)
    folder.chmod(dir_mode)
    return path


def test_read_only_file_is_read_but_not_written(shared_dir: Path) -> None:
    path = store_for_other_user(shared_dir, 0o444, 0o777)
    before = path.read_bytes()
    out = as_other_user(path)
    assert (out["episodes"], out["steps"]) == (30, 30 * 200), out
    name, text = out["write_error"]  # type: ignore[misc]
    assert name == "ReadOnlyStoreError"
    assert str(path) in text
    assert "read-only" in text
    assert path.read_bytes() == before


def test_read_only_folder_is_read_without_a_shm_file(shared_dir: Path) -> None:
    path = store_for_other_user(shared_dir, 0o444, 0o555)
    out = as_other_user(path)
    assert (out["episodes"], out["steps"]) == (30, 30 * 200), out
    assert out["write_error"][0] == "ReadOnlyStoreError", out  # type: ignore[index]
    assert listing(path.parent) == ["db.sqlite"]


def test_unreadable_file(shared_dir: Path) -> None:
    path = store_for_other_user(shared_dir, 0o000, 0o777)
    out = as_other_user(path)
    name, text = out["read_error"]  # type: ignore[misc]
    assert name == "StoreAccessError"
    assert str(path) in text
    assert "\n" not in text
    assert out["write_error"][0] == "StoreAccessError", out  # type: ignore[index]


@pytest.fixture
def read_only_mount() -> Iterator[Path]:
    """A real tmpfs remounted read-only (root only)."""
    if not IS_ROOT:
        pytest.skip("mounting needs root")
    folder = Path(tempfile.mkdtemp(prefix="nbtrain-romount-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"mount not permitted: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)
        folder.rmdir()


def test_read_only_mount(read_only_mount: Path, good: tuple[Path, str]) -> None:
    path = read_only_mount / "db.sqlite"
    shutil.copyfile(good[0], path)
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_mount)], check=True)
    store = TelemetryStore(path)
    assert len(store.steps(good[1])) == 30 * 200
    with pytest.raises(ReadOnlyStoreError, match="read-only") as info:
        ensure_writable(path)
    one_line(info.value, path)
    assert listing(read_only_mount) == ["db.sqlite"]


def test_read_only_older_file_says_it_needs_an_upgrade(shared_dir: Path) -> None:
    path = store_for_other_user(shared_dir, 0o644, 0o777)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("ALTER TABLE workers DROP COLUMN backend")  # as schema 2 had it
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    path.chmod(0o444)
    out = as_other_user(path)
    name, text = out["read_error"]  # type: ignore[misc]
    assert name == "ReadOnlyStoreError"
    assert "upgraded to store schema version" in text
    assert str(path) in text


def test_checking_a_file_keeps_this_process_s_locks(tmp_path: Path) -> None:
    """Regression: the header check used to open() and close() the database file, which
    drops every POSIX lock this process holds on it (a live writer's too); another process
    could then checkpoint and remove the WAL under the writer ("disk I/O error")."""
    from nbtrain.store import TelemetryStore
    from nbtrain.store.writer import acquire_writer

    db = tmp_path / "locks.sqlite"
    w = acquire_writer(db)
    try:
        w.call(lambda c: c.execute("INSERT INTO runs (run_id, status) VALUES ('r', 'running')"))
        for _ in range(3):
            TelemetryStore(db).runs()  # checks the file while the writer holds its locks
        other = (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=5); "
            "c.execute('PRAGMA wal_checkpoint(TRUNCATE)'); "
            "c.execute('UPDATE runs SET name = ?', ('x',)); c.commit(); c.close()"
        )
        done = subprocess.run([sys.executable, "-c", other, str(db)], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        # The other process could not take the WAL away: this process still holds its lock.
        assert Path(f"{db}-wal").exists()
        assert Path(f"{db}-shm").exists()
        # This process's writer still works, and so does a fresh connection here.
        w.call(lambda c: c.execute("UPDATE runs SET status = 'completed'"))
        conn = sqlite3.connect(db)
        assert conn.execute("SELECT name, status FROM runs").fetchall() == [("x", "completed")]
        conn.close()
    finally:
        w.release()
