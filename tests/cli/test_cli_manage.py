"""``nbtrain rm | archive | du``: exit codes, the confirm question, and the database after."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbtrain.cli import main
from tests.kit.runs import TABLES, add_run, counts, expected, make_db

UNKNOWN = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "cli.sqlite")


def run_cli(*args: str, stdin: str | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbtrain.cli", *args],
        cwd=cwd,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


# The CLI in a process whose files cannot grow past 64 KiB (RLIMIT_FSIZE: also for root).
_FULL_DISK = (
    "import resource, signal, sys\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))\n"
    "from nbtrain.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def cli_on_a_full_disk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _FULL_DISK, *args], capture_output=True, text=True, timeout=120
    )


def test_rm_asks_with_the_per_worker_summary_and_no_keeps_the_run(db: Path) -> None:
    run_id = add_run(db, workers=3, episodes=4)
    result = run_cli("rm", run_id, "--db", str(db), stdin="n\n", cwd=db.parent)
    assert result.returncode == 1, result.stderr
    for wid in ("000001", "000002", "000003"):
        assert wid in result.stdout
    assert f"Delete run {run_id} (3 workers, 12 episodes, 48 steps)" in result.stdout
    assert "nothing deleted" in result.stdout
    assert counts(db, run_id) == expected(3, 4)

    closed = run_cli("rm", run_id, "--db", str(db), stdin=None, cwd=db.parent)
    assert closed.returncode == 1  # no answer is no
    assert counts(db, run_id) == expected(3, 4)

    yes = run_cli("rm", run_id, "--db", str(db), stdin="y\n", cwd=db.parent)
    assert yes.returncode == 0, yes.stderr
    assert "12 episodes" in yes.stdout
    assert counts(db, run_id) == dict.fromkeys(TABLES, 0)
    assert not (db.parent / "nbtrain-runs" / run_id).exists()


def test_rm_yes_does_not_ask(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = add_run(db)
    kept = add_run(db)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["rm", run_id, "--yes", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "[y/N]" not in out
    assert counts(db, run_id) == dict.fromkeys(TABLES, 0)
    assert counts(db, kept) == expected(2, 3)


@pytest.mark.parametrize("command", ["rm", "archive"])
def test_unknown_run_or_missing_db_is_exit_2_with_one_line(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    extra = ["--to", str(tmp_path / "a.sqlite")] if command == "archive" else ["--yes"]
    assert main([command, UNKNOWN, "--db", str(db), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"nbtrain {command}: error: no run '{UNKNOWN}'" in err
    assert main([command, UNKNOWN, "--db", str(tmp_path / "none.sqlite"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no database at" in err
    assert not (tmp_path / "none.sqlite").exists()
    # Regression: an empty file (a mistyped or half-made path) was made a database.
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    assert main([command, UNKNOWN, "--db", str(empty), *extra]) == 2
    assert "is an empty file: it holds no runs" in capsys.readouterr().err
    assert empty.stat().st_size == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("empty.sqlite-")]


def test_archive_moves_the_run_and_refuses_twice(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = add_run(db, workers=2, episodes=2)
    (tmp_path / "cold").mkdir()
    archive = tmp_path / "cold" / "archive.sqlite"
    assert main(["archive", run_id, "--to", str(archive), "--db", str(db)]) == 0
    assert f"archived run {run_id} to {archive}" in capsys.readouterr().out
    assert counts(archive, run_id) == expected(2, 2)
    assert counts(db, run_id) == dict.fromkeys(TABLES, 0)
    assert (tmp_path / "cold" / "nbtrain-runs" / run_id).is_dir()
    # Again: the run is no longer in the source.
    assert main(["archive", run_id, "--to", str(archive), "--db", str(db)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_archive_needs_to(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["archive", UNKNOWN, "--db", str(db)])
    assert exc.value.code == 2
    assert "--to" in capsys.readouterr().err


def test_du_lists_runs_and_workers_largest_first(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = add_run(db, workers=1, episodes=1, name="small-one")
    big = add_run(db, workers=2, episodes=5, pad=500, name="big-one")
    assert main(["du", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.index(big) < out.index(small)
    assert "big-one" in out
    assert "small-one" in out
    per_worker = out[out.index("per worker") :]
    assert per_worker.count(big) == 2
    assert per_worker.count(small) == 1
    assert "KiB" in out
    assert "free" in out


def test_rm_of_a_live_run_is_refused_before_asking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbtrain

    db = tmp_path / "live.sqlite"
    run = nbtrain.launch(
        {"env_id": "FrozenLake-v1", "episodes": 5000, "step_delay": 0.01, "workers": 1}, db=db
    )
    try:
        monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
        assert main(["rm", run.run_id, "--db", str(db)]) == 2
        captured = capsys.readouterr()
        assert "[y/N]" not in captured.out
        assert captured.err.count("\n") == 1
        assert f"run {run.run_id} has live workers: 000001" in captured.err
        assert (
            main(["archive", run.run_id, "--to", str(tmp_path / "a.sqlite"), "--db", str(db)]) == 2
        )
        assert "has live workers" in capsys.readouterr().err
    finally:
        run.stop()
    assert counts(db, run.run_id)["runs"] == 1


@pytest.mark.parametrize("where", ["a-file", "a-file/sub"])
def test_export_into_a_file_is_exit_2_with_one_line(
    db: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """Regression: --out naming a file (or a path through one) crashed with a traceback and
    exit code 1, which this CLI means for a failed worker."""
    run_id = add_run(db)
    (db.parent / "a-file").write_text("keep me")
    out = db.parent / where
    assert main(["export", run_id, "--out", str(out), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "a-file" in err
    assert len(err.strip().splitlines()) == 1
    assert (db.parent / "a-file").read_text() == "keep me"


def test_export_onto_a_full_disk_is_exit_2_and_names_the_file(db: Path) -> None:
    """A disk that fills up under the export (RLIMIT_FSIZE: files cannot grow past 64 KiB,
    also for root) is a clear one-line error, not a traceback."""
    run_id = add_run(db, episodes=20, steps=50, pad=100)
    out = db.parent / "export"
    result = cli_on_a_full_disk("export", run_id, "--out", str(out), "--format", "csv",
                                "--db", str(db))  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{run_id}-steps.csv" in result.stderr
    assert "File too large" in result.stderr
    assert counts(db, run_id)["step_chunks"] == 40  # the run itself is untouched
    assert list(out.iterdir()) == []  # no partial file that looks like an export


def test_export_force_that_fails_keeps_the_previous_export(db: Path) -> None:
    """Regression: --force deleted the old files before writing; a full disk (RLIMIT_FSIZE)
    then left neither the old export nor a new one."""
    run_id = add_run(db, episodes=20, steps=50, pad=100)
    out = db.parent / "export"
    assert main(["export", run_id, "--out", str(out), "--format", "csv", "--db", str(db)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == [f"{run_id}-episodes.csv", f"{run_id}-steps.csv"]
    result = cli_on_a_full_disk("export", run_id, "--out", str(out), "--format", "csv",
                                "--force", "--db", str(db))  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"{run_id}-steps.csv" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_export_of_a_run_still_going_pairs_every_step_with_its_episode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: episodes and steps were read in two transactions, and the steps of the
    episodes being played went out with no episode row (audit: 30 episodes, steps of 32)."""
    import pandas as pd

    import nbtrain

    db = tmp_path / "live.sqlite"
    config = {"env_id": "FrozenLake-v1", "agent": "random", "episodes": 100_000,
              "workers": 2, "step_delay": 0.002, "seed": 1}  # fmt: skip
    run = nbtrain.launch(config, db=db)
    left_out = 0
    try:
        for attempt in range(40):
            if attempt and left_out:
                break
            time.sleep(0.15)
            out = tmp_path / f"out{attempt}"
            assert main(["export", run.run_id, "--out", str(out), "--db", str(db),
                         "--format", "csv"]) == 0  # fmt: skip
            printed = capsys.readouterr().out
            episodes = pd.read_csv(out / f"{run.run_id}-episodes.csv", dtype={"worker_id": str})
            steps = pd.read_csv(out / f"{run.run_id}-steps.csv", dtype={"worker_id": str})
            pairs = set(zip(episodes["worker_id"], episodes["ep_index"], strict=True))
            assert set(zip(steps["worker_id"], steps["ep_index"], strict=True)) <= pairs
            assert len(steps) == int(episodes["length"].sum())
            if "still being played were left out" in printed:
                left_out += 1
    finally:
        run.stop()
    assert left_out  # the case the regression is about did occur


@pytest.mark.parametrize(
    "name", ["oops [/] x", "[final] run", "[link=http://x.test]click[/link]", ":smile: [bold]b"]
)
def test_names_and_paths_are_printed_as_typed_never_as_markup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    # Regression: rich read run names and --db paths as markup: "oops [/] x" crashed
    # `runs` and `du`, "[final]" vanished, "[link=...]" made a link.
    folder = tmp_path / "[exp] dir"
    folder.mkdir()
    db = make_db(folder / "a[b].sqlite")
    run_id = add_run(db, name=name)
    for command in (["runs"], ["du"], ["summary", run_id]):
        assert main([*command, "--db", str(db)]) == 0
        out = capsys.readouterr().out
        if command[0] != "summary":
            assert name in out
        assert "a[b].sqlite" in out or command[0] == "summary"
        assert "\x1b]8;" not in out  # no terminal hyperlink


def test_summary_says_why_each_failed_worker_failed(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = add_run(db, workers=3, status="completed")
    con = sqlite3.connect(db)
    with con:
        con.execute(
            "UPDATE workers SET status = 'failed', exit_code = 1, error = ? "
            "WHERE run_id = ? AND worker_id = '000002'",
            ("RuntimeError: agent exploded\n  on purpose", run_id),
        )
        con.execute(
            "UPDATE workers SET status = 'failed', exit_code = 1, error = NULL "
            "WHERE run_id = ? AND worker_id = '000003'",
            (run_id,),
        )
    con.close()
    assert main(["summary", run_id, "--db", str(db)]) == 1  # as run and stop say it
    err = capsys.readouterr().err.splitlines()
    assert "worker 000002 failed: RuntimeError: agent exploded on purpose" in err
    assert "worker 000003 failed: no reason recorded" in err
    assert not any("000001" in line for line in err)


def test_a_run_id_typed_in_lower_case_names_the_same_run(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Regression: ULIDs are case-insensitive, but "summary 01m8..." was "not a run id".
    run_id = add_run(db, workers=2, episodes=3)
    assert main(["summary", run_id.lower(), "--db", str(db)]) == 0
    assert capsys.readouterr().out.count("000002") == 1
    out = db.parent / "exported"
    assert main(["export", run_id.lower(), "--out", str(out), "--db", str(db)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        f"{run_id}-episodes.parquet",
        f"{run_id}-steps.parquet",
    ]
    assert main(["rm", run_id.lower(), "--yes", "--db", str(db)]) == 0
    assert counts(db, run_id) == dict.fromkeys(TABLES, 0)
    assert main(["summary", "not-a-ulid", "--db", str(db)]) == 2
    assert "'not-a-ulid' is not a run id" in capsys.readouterr().err
