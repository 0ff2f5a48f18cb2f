"""No path built from a run id, worker id, name or option leaves its folder."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import nbtrain
from nbtrain.errors import UnknownRunError

HOSTILE = ["../../escaped", "../escaped", "/tmp/escaped", "a/../../b", "..", "01J/../../x"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbtrain.cli", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)  # fmt: skip


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def crafted(tmp_path: Path) -> Path:
    """A database someone sent us, whose run ids are paths."""
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    db = work / "crafted.sqlite"
    nbtrain.launch({"env_id": "FrozenLake-v1", "episodes": 2}, db=db).wait()
    conn = sqlite3.connect(db)
    for run_id in HOSTILE:
        conn.execute("INSERT INTO runs (run_id, name, status) VALUES (?, 'x', 'completed')",
                     (run_id,))  # fmt: skip
        conn.execute("INSERT INTO workers (run_id, worker_id, status) VALUES (?, '000001', "
                     "'completed')", (run_id,))  # fmt: skip
    conn.commit()
    conn.close()
    return db


@pytest.mark.parametrize("run_id", HOSTILE)
def test_export_refuses_hostile_run_ids(crafted: Path, run_id: str) -> None:
    root = crafted.parents[2]
    before = _tree(root)
    done = _cli("export", run_id, "--out", "exportdir/sub", "--format", "csv",
                "--db", str(crafted), cwd=crafted.parent)  # fmt: skip
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "not a run id" in done.stderr
    assert _tree(root) == before


@pytest.mark.parametrize("run_id", HOSTILE)
def test_open_and_summary_refuse_hostile_run_ids(crafted: Path, run_id: str) -> None:
    with pytest.raises(UnknownRunError, match="not a run id"):
        nbtrain.Run.open(run_id, db=crafted)
    done = _cli("summary", run_id, "--db", str(crafted), cwd=crafted.parent)
    assert done.returncode == 2
    assert "not a run id" in done.stderr


def test_export_writes_inside_out_and_refuses_to_overwrite(crafted: Path) -> None:
    (run_id,) = [r for r in nbtrain.TelemetryStore(crafted).runs()["run_id"] if len(r) == 26]
    out = crafted.parent / "exportdir" / "sub"
    first = _cli("export", run_id, "--out", str(out), "--format", "csv", "--db", str(crafted),
                 cwd=crafted.parent)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert _tree(out) == {f"{run_id}-episodes.csv", f"{run_id}-steps.csv"}
    episodes = out / f"{run_id}-episodes.csv"
    episodes.write_text("mine\n")
    again = _cli("export", run_id, "--out", str(out), "--format", "csv", "--db", str(crafted),
                 cwd=crafted.parent)  # fmt: skip
    assert again.returncode == 2
    assert len(again.stderr.strip().splitlines()) == 1
    assert "--force" in again.stderr
    assert episodes.read_text() == "mine\n"
    forced = _cli("export", run_id, "--out", str(out), "--format", "csv", "--force",
                  "--db", str(crafted), cwd=crafted.parent)  # fmt: skip
    assert forced.returncode == 0
    assert episodes.read_text().startswith("run_id,")


def test_force_replaces_a_symlink_not_its_target(crafted: Path, tmp_path: Path) -> None:
    (run_id,) = [r for r in nbtrain.TelemetryStore(crafted).runs()["run_id"] if len(r) == 26]
    out = crafted.parent / "out"
    out.mkdir()
    target = tmp_path / "precious.txt"
    target.write_text("keep")
    (out / f"{run_id}-episodes.csv").symlink_to(target)
    done = _cli("export", run_id, "--out", str(out), "--format", "csv", "--force",
                "--db", str(crafted), cwd=crafted.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert target.read_text() == "keep"
    assert not (out / f"{run_id}-episodes.csv").is_symlink()
