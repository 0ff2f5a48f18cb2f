"""A worker run by hand on the config file a dispatcher recorded: it may read the recorded
run's folder but never changes it (the run's database describes those files)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from tests.kit.worker import worker_env

import nbtrain

pytestmark = pytest.mark.slow


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _by_hand(config: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbtrain.worker", "--config", str(config), "--worker-id", "1",
         "--jsonl", *extra],
        cwd=cwd, env=worker_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[str, Path]:
    """A finished 1-worker run: its id and its folder (config and policy files)."""
    db = tmp_path / "db" / "nbtrain.sqlite"
    db.parent.mkdir()
    run = nbtrain.launch(
        {"env_id": "FrozenLake-v1", "env_kwargs": {"is_slippery": False}, "episodes": 30,
         "seed": 3},
        db=db,
    )  # fmt: skip
    assert run.wait() == {"000001": "completed"}
    folder = db.parent / "nbtrain-runs" / run.run_id
    assert (folder / "policy-000001.json").exists()
    return run.run_id, folder


def test_a_hand_run_writes_its_policy_beside_the_user_not_into_the_recorded_run(
    recorded: tuple[str, Path], tmp_path: Path
) -> None:
    # Regression: the hand-run worker overwrote the recorded run's policy-000001.json, which
    # then no longer matched the episodes the database holds for it.
    run_id, folder = recorded
    before = _digests(folder)
    here = tmp_path / "here"
    here.mkdir()
    result = _by_hand(folder / f"worker-{run_id}-000001.json", here)
    assert result.returncode == 0, result.stderr
    assert _digests(folder) == before
    mine = here / "nbtrain-hand" / run_id / "policy-000001.json"
    assert mine.exists()
    assert f"policy files go to {mine.parent}" in result.stderr
    assert str(mine) in result.stdout  # the policy artifact event names where it went


def test_out_chooses_the_folder_and_a_file_there_is_exit_2(
    recorded: tuple[str, Path], tmp_path: Path
) -> None:
    run_id, folder = recorded
    config = folder / f"worker-{run_id}-000001.json"
    before = _digests(folder)
    result = _by_hand(config, tmp_path, "--out", "mine")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mine" / "policy-000001.json").exists()
    (tmp_path / "a-file").write_text("keep")
    refused = _by_hand(config, tmp_path, "--out", "a-file")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"nbtrain.worker: error: --out {str(tmp_path / 'a-file')!r} is a file; "
        "pass a folder (made if missing)"
    ]
    assert (tmp_path / "a-file").read_text() == "keep"
    assert _digests(folder) == before
