"""SwapWriter: periodic checkpoints replace the target atomically through one reused file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nbtrain.agents.atomic import SwapWriter

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="renameat2 is Linux's")


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_each_write_replaces_the_target_whole_and_private(tmp_path: Path) -> None:
    target = tmp_path / "policy.json"
    writer = SwapWriter(target)
    inodes = set()
    for i, size in enumerate((500, 20, 3000, 1)):  # shorter after longer: no stale tail
        data = bytes([65 + i]) * size
        writer.write(data)
        assert target.read_bytes() == data
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        inodes.add(target.stat().st_ino)
    assert writer.exchanges  # ext4, tmpfs, xfs and btrfs all exchange
    assert len(inodes) == 2  # two files trade places; no new file per write
    assert _names(tmp_path) == [".policy.json.swap.tmp", "policy.json"]
    writer.close()
    assert _names(tmp_path) == ["policy.json"]
    assert target.read_bytes() == b"D"


def test_an_existing_target_is_replaced_and_keeps_nothing_of_its_own(tmp_path: Path) -> None:
    target = tmp_path / "policy.json"
    target.write_bytes(b"x" * 100)
    os.chmod(target, 0o644)
    writer = SwapWriter(target)
    writer.write(b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    writer.close()


def test_without_exchange_it_falls_back_to_a_rename(tmp_path: Path) -> None:
    target = tmp_path / "policy.json"
    writer = SwapWriter(target)
    writer.exchanges = False  # as on a file system or OS without RENAME_EXCHANGE
    writer.write(b"one")
    writer.write(b"two")
    assert target.read_bytes() == b"two"
    assert _names(tmp_path) == ["policy.json"]


def test_a_link_planted_as_the_swap_file_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "policy.json"
    target.write_bytes(b"old")
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    writer = SwapWriter(target)
    writer.spare.symlink_to(victim)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        writer.write(b"new")
    assert victim.read_bytes() == b"precious"
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["policy.json", "victim"]  # the planted link is removed


def test_a_full_disk_keeps_the_old_target_and_leaves_no_swap_file(tmp_path: Path) -> None:
    """A real EFBIG (RLIMIT_FSIZE in a child): the old checkpoint stays whole."""
    target = tmp_path / "policy.json"
    script = textwrap.dedent(
        f"""
        import resource, sys
        from pathlib import Path
        from nbtrain.agents.atomic import SwapWriter
        writer = SwapWriter(Path({str(target)!r}))
        writer.write(b"old" * 10)
        writer.write(b"older" * 10)  # the swap file now exists and holds "old"
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))
        try:
            writer.write(b"n" * 1000)
        except OSError as exc:
            print(exc.strerror)
            sys.exit(3)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 3, out.stderr
    assert "File too large" in out.stdout
    assert target.read_bytes() == b"older" * 10
    assert _names(tmp_path) == ["policy.json"]


def test_a_reader_in_another_process_only_ever_sees_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "policy.json"
    writer = SwapWriter(target)
    writer.write(json.dumps({"n": -1, "pad": "x" * 5000}).encode())
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import json, sys
                seen = set()
                for _ in range(20000):
                    with open({str(target)!r}, "rb") as f:
                        seen.add(json.loads(f.read())["n"])  # raises on a torn file
                print(len(seen))
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    n = 0
    while reader.poll() is None:
        # sizes vary so that a torn read would show as bad JSON
        writer.write(json.dumps({"n": n, "pad": "x" * (n % 7000)}).encode())
        n += 1
    out, _ = reader.communicate()
    assert reader.returncode == 0
    assert n > 100
    assert int(out) >= 1
    writer.close()
