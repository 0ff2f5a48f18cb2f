"""The browser tests' own rules, checked without a browser: a missing browser or playwright
skips locally and fails in CI; the helpers read the store and launch messages strictly."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser_env import find_chromium, require_chromium, unavailable
from browser_notebook import wait_db_statuses, worker_statuses  # needs no playwright
from browser_server import check_jupyter_paths, jupyter_env, own_processes


def test_missing_browser_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium here"):
        unavailable("no chromium here")


def test_missing_browser_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no chromium here; the browser tests must"):
        unavailable("no chromium here")


def test_chromium_override_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NBTRAIN_CHROMIUM", str(tmp_path / "nowhere" / "chromium"))
    assert find_chromium() is None
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="no system Chromium"):
        require_chromium()
    fake = tmp_path / "chromium"
    fake.write_text("")
    monkeypatch.setenv("NBTRAIN_CHROMIUM", str(fake))
    assert require_chromium() == str(fake)


def test_temporary_jupyter_folders_still_find_the_kernel_and_widget_extensions(
    tmp_path: Path,
) -> None:
    env = jupyter_env(tmp_path)
    assert env["JUPYTER_DATA_DIR"].startswith(str(tmp_path))
    assert "tests/helpers" in env["PYTHONPATH"]
    check_jupyter_paths(env)  # raises if sys.prefix/share/jupyter fell off the path


def test_stray_processes_are_found_by_their_folder(tmp_path: Path) -> None:
    marker = str(tmp_path / "runtime" / "kernel-x.json")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker])
    try:
        deadline = time.monotonic() + 10
        while not own_processes(str(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid, _ in own_processes(str(tmp_path))] == [proc.pid]
    finally:
        proc.kill()
        proc.wait()
    assert own_processes(str(tmp_path)) == []


def _store(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE workers (run_id TEXT, worker_id TEXT, status TEXT)")
    con.executemany("INSERT INTO workers VALUES (?, ?, ?)", rows)
    con.commit()
    con.close()
    return path


def test_worker_statuses_need_a_run_id_when_the_file_holds_several(tmp_path: Path) -> None:
    db = _store(tmp_path / "x.sqlite", [("r1", "000001", "stopped"), ("r2", "000001", "running")])
    assert worker_statuses(db, "r1") == {"000001": "stopped"}
    with pytest.raises(AssertionError, match=r"holds runs \['r1', 'r2'\]; say which one"):
        worker_statuses(db)


def test_waiting_for_stored_statuses_names_what_it_saw(tmp_path: Path) -> None:
    db = _store(tmp_path / "x.sqlite", [("r1", "000001", "running")])
    assert wait_db_statuses(db, {"000001": "running"}) == {"000001": "running"}
    with pytest.raises(AssertionError, match=r"says \{'000001': 'running'\}.*'stopped'"):
        wait_db_statuses(db, {"000001": "stopped"}, timeout=0.3)
