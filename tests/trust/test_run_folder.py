"""The run folder is output, not input: nothing a run-folder file says is run or trusted."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import cloudpickle
import pytest

import nbtrain
from tests.kit.kernel import Kernel, rows
from tests.kit.processes import wait_for

CONFIG = {"env_id": "FrozenLake-v1", "env_kwargs": {"is_slippery": False}, "workers": 2}


class _Payload:
    """Unpickling this writes a marker file: what an attacker's pickle would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_run_folder_and_files_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "umask", os.umask)  # keep the process umask as it is
    old = os.umask(0o022)
    try:
        run = nbtrain.launch(CONFIG | {"episodes": 5}, db=tmp_path / "db.sqlite")
        run.wait()
    finally:
        os.umask(old)
    folder = tmp_path / "nbtrain-runs" / run.run_id
    assert _mode(folder) == 0o700
    files = sorted(folder.iterdir())
    assert {f.name for f in files} >= {
        f"worker-{run.run_id}-000001.json",
        f"worker-{run.run_id}-000002.json",
        "policy-000001.json",
        "policy-000002.json",
    }
    for path in files:
        assert _mode(path) == 0o600, path
    assert not [f for f in files if f.name.endswith(".tmp")]


def _tamper(path: Path, marker: Path, elsewhere: Path) -> None:
    data = json.loads(path.read_text())
    payload = base64.b64encode(cloudpickle.dumps(_Payload(str(marker)))).decode()
    data["agent"] = {"kind": "pickle", "name": "x.Evil", "payload": payload}
    data["run_dir"] = str(elsewhere)
    path.write_text(json.dumps(data))


def _check_untouched(path: Path, marker: Path, elsewhere: Path) -> None:
    assert not marker.exists()
    assert list(elsewhere.iterdir()) == []
    rewritten = json.loads(path.read_text())
    assert rewritten["agent"] == {"kind": "builtin", "name": "q_learning",
                                  "source_sha256": None, "payload": None}  # fmt: skip
    assert rewritten["run_dir"] == str(path.parent)


@pytest.mark.parametrize("owner", ["this kernel", "a dead kernel"])
def test_restart_ignores_a_tampered_worker_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owner: str
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "db.sqlite"
    if owner == "this kernel":
        run = nbtrain.launch(CONFIG | {"episodes": 100_000, "step_delay": 0.001}, db=db)
        wait_for(lambda: len(run.episodes(worker_id=1)) >= 3, 30, "episodes")
        run.stop("000001")
        run_id = run.run_id
    else:
        kernel = Kernel(db, episodes=100_000, workers=2, delay=0.001)
        try:
            run_id = kernel.run_id
            wait_for(lambda: rows(db, "SELECT COUNT(*) FROM episodes")[0][0] >= 6, 30, "episodes")
        finally:
            kernel.kill()
        run = nbtrain.Run.open(run_id, db=db)
        wait_for(lambda: "running" not in run.status().values(), 5, "the owner's death seen")
    before = len(run.episodes(worker_id=1))
    path = tmp_path / "nbtrain-runs" / run_id / f"worker-{run_id}-000001.json"
    marker, elsewhere = tmp_path / "pwned", tmp_path / "elsewhere"
    elsewhere.mkdir()
    _tamper(path, marker, elsewhere)
    run.restart(1)
    wait_for(lambda: len(run.episodes(worker_id=1)) > before + 2, 30, "new episodes")
    run.stop()
    _check_untouched(path, marker, elsewhere)
    after = run.episodes(worker_id=1)
    assert after["ep_index"].tolist() == list(range(len(after)))


def test_restart_from_another_process_is_refused_while_the_owner_lives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "db.sqlite"
    run = nbtrain.launch(CONFIG | {"episodes": 100_000, "step_delay": 0.001}, db=db)
    run.stop()
    script = "import nbtrain, sys; nbtrain.Run.open(sys.argv[1], db=sys.argv[2]).restart(1)"
    done = subprocess.run([sys.executable, "-c", script, run.run_id, str(db)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert f"pid {os.getpid()}" in done.stderr
    assert "RunError" in done.stderr


def test_a_notebook_agent_is_restarted_from_the_database_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "db.sqlite"

    class Walker:  # defined here, like a notebook cell: shipped by value
        def __init__(self, observation_space: object, action_space: object, seed: int = 0) -> None:
            self.n = 0

        def act(self, obs: object, explore: bool = True) -> int:
            self.n += 1
            return 2 if self.n % 2 else 1

        def learn(self, *args: object) -> None:
            return None

    run = nbtrain.launch(CONFIG | {"agent": Walker, "episodes": 100_000, "step_delay": 0.001,
                                   "workers": 1}, db=db)  # fmt: skip
    run.stop()
    assert rows(db, "SELECT agent_pickle IS NOT NULL FROM runs") == [(1,)]
    path = tmp_path / "nbtrain-runs" / run.run_id / f"worker-{run.run_id}-000001.json"
    path.unlink()  # the run folder is not needed to restart
    fresh = nbtrain.Run(run.run_id, run.db, None)  # as after a kernel restart
    run._session = None
    fresh.restart(1)
    assert fresh.status()["000001"] == "running"
    fresh.stop()
    assert path.exists()
    assert json.loads(path.read_text())["agent"]["kind"] == "pickle"
