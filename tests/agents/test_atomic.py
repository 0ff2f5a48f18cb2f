"""Atomic policy writes: 0600, whole or untouched, and no temp file left on any failure."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

from nbtrain.agents import QLearningAgent
from nbtrain.agents.atomic import temp_path, write_atomic


def test_write_replaces_whole_file_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "p.json"
    target.write_text("old")
    os.chmod(target, 0o644)
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]


def test_temp_files_are_exclusive_and_private(tmp_path: Path) -> None:
    target = tmp_path / "p.json"
    first, second = temp_path(target), temp_path(target)
    assert first != second
    assert first.parent == second.parent == tmp_path
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert first.name.startswith(".p.json.")


def test_rename_failure_removes_the_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("x")  # os.replace onto a non-empty folder fails
    with pytest.raises(IsADirectoryError, match="Is a directory"):
        write_atomic(target, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_missing_folder_fails_without_litter(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "nope" / "p.json", b"x")
    assert list(tmp_path.iterdir()) == []


def test_file_size_limit_leaves_old_policy_and_no_temp(tmp_path: Path) -> None:
    """A real EFBIG from RLIMIT_FSIZE in a child process (the write itself fails)."""
    env = gym.make("FrozenLake-v1", map_name="8x8")
    target = tmp_path / "policy.json"
    QLearningAgent(env.observation_space, env.action_space, seed=0).save(target)
    before = target.read_bytes()
    script = textwrap.dedent(
        f"""
        import resource, sys
        import gymnasium as gym
        from nbtrain.agents import QLearningAgent
        env = gym.make("FrozenLake-v1", map_name="8x8")
        agent = QLearningAgent(env.observation_space, env.action_space, seed=1)
        agent.q[0][0] = 123.0
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))
        try:
            agent.save({str(target)!r})
        except OSError as exc:
            print(exc.errno, exc.strerror)
            sys.exit(3)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 3, out.stderr
    assert "File too large" in out.stdout
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["policy.json"]
