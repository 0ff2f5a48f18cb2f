"""archive_run when the archive's disk fills up midway, made for real: a small tmpfs (as
root), and ``RLIMIT_FSIZE`` in a child process (any user). The rows fill it, or the rows fit
and the run folder does not; either way the run stays whole in the source and nothing this
call made is left beside the archive (not even the empty archive file or runs folder)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.kit.runs import TABLES, add_run, counts, expected, make_db

from nbtrain.errors import StoreError
from nbtrain.store import TelemetryStore

MB = 1024 * 1024
# (rows padding per step, policy file bytes): rows too big / folder too big for ~3 MB.
BIG_ROWS = {"pad": 4000, "folder_bytes": 0}
BIG_FOLDER = {"pad": 0, "folder_bytes": 8 * MB}


def _source(tmp_path: Path, shape: dict[str, int]) -> tuple[Path, str]:
    db = make_db(tmp_path / "src.sqlite")
    run_id = add_run(db, workers=2, episodes=20, steps=20, **shape)
    return db, run_id


def _assert_whole(db: Path, run_id: str, shape: dict[str, int]) -> None:
    assert counts(db, run_id) == expected(2, 20)
    folder = db.parent / "nbtrain-runs" / run_id
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == (3 if shape["folder_bytes"] else 2)
    if shape["folder_bytes"]:
        assert (folder / "policy-000001.pkl").stat().st_size == shape["folder_bytes"]


@pytest.mark.parametrize("shape", [BIG_ROWS, BIG_FOLDER], ids=["rows", "folder"])
def test_archive_onto_a_full_tmpfs_leaves_the_run_whole(
    tmp_path: Path, small_fs: Callable[[Path, int], Path], shape: dict[str, int]
) -> None:
    db, run_id = _source(tmp_path, shape)
    place = small_fs(tmp_path / "small", 3 * MB)
    archive = place / "archive.sqlite"
    with pytest.raises(StoreError, match=r"(full|space|Errno 28).*the run is unchanged"):
        TelemetryStore(db).archive_run(run_id, to=archive)
    _assert_whole(db, run_id, shape)
    assert sorted(place.iterdir()) == []


CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    limit = int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from nbtrain.store import TelemetryStore
    try:
        TelemetryStore(sys.argv[1]).archive_run(sys.argv[2], to=sys.argv[4])
        print(json.dumps({"ok": True}))
    except Exception as err:
        print(json.dumps({"ok": False, "type": type(err).__name__, "message": str(err)}))
    """
)


@pytest.mark.parametrize("shape", [BIG_ROWS, BIG_FOLDER], ids=["rows", "folder"])
def test_archive_past_rlimit_fsize_leaves_the_run_whole(
    tmp_path: Path, shape: dict[str, int]
) -> None:
    db, run_id = _source(tmp_path, shape)
    (tmp_path / "dest").mkdir()
    archive = tmp_path / "dest" / "archive.sqlite"
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), run_id, str(3 * MB), str(archive)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["ok"] is False
    assert outcome["type"] == "StoreError"
    assert "the run is unchanged" in outcome["message"]
    assert "restart the run" not in outcome["message"]  # (advice for a run being written)
    _assert_whole(db, run_id, shape)
    # The archive file and the runs folder this call made are gone, not left empty (for
    # "folder" the rows fit and were copied; the folder did not fit).
    assert sorted((tmp_path / "dest").iterdir()) == []
    # Without the limit the same archive takes it.
    assert TelemetryStore(db).archive_run(run_id, to=archive) == expected(2, 20)
    assert counts(db, run_id) == dict.fromkeys(TABLES, 0)
