"""Three workers in one run, end to end: real subprocesses, pipes, SQLite and DataFrames."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import nbtrain
from nbtrain.ids import parse_episode_id

pytestmark = pytest.mark.slow

EPISODES = 12


@pytest.fixture
def finished_run(db: Path) -> nbtrain.Run:
    config = nbtrain.TrainConfig(
        env_id="FrozenLake-v1",
        env_kwargs={"is_slippery": False},
        agent="q_learning",
        episodes=EPISODES,
        max_steps_per_episode=50,
        seed=3,
        workers=[7, "gpu_a", None],
    )
    run = nbtrain.launch(config, db=db)
    assert run.wait(timeout=120) == {
        "000007": "completed",
        "gpu_a": "completed",
        "000001": "completed",
    }
    return run


def test_ids_files_and_statuses(finished_run: nbtrain.Run, db: Path) -> None:
    run = finished_run
    assert len(run.run_id) == 26
    assert run.worker_ids == ["000007", "gpu_a", "000001"]
    assert run.run_status == "completed"
    run_dir = db.parent / "nbtrain-runs" / run.run_id
    for wid in run.worker_ids:
        spec = json.loads((run_dir / f"worker-{run.run_id}-{wid}.json").read_text())
        assert spec["worker_id"] == wid
        assert spec["run_id"] == run.run_id
        assert spec["episodes"] == EPISODES


def test_exact_counts_per_worker(finished_run: nbtrain.Run, db: Path) -> None:
    run = finished_run
    episodes = run.episodes()
    assert len(episodes) == 3 * EPISODES
    assert episodes.groupby("worker_id", observed=True).size().to_dict() == dict.fromkeys(
        ["000001", "000007", "gpu_a"], EPISODES
    )
    for row in episodes.itertuples():
        assert parse_episode_id(row.episode_id) == (run.run_id, row.worker_id, row.ep_index)
    steps = run.steps()
    per_worker_steps = steps.groupby("worker_id", observed=True).size()
    per_worker_lengths = episodes.groupby("worker_id", observed=True)["length"].sum()
    pd.testing.assert_series_equal(per_worker_steps, per_worker_lengths, check_names=False)
    # Every step row belongs to a stored episode, and steps share the episode's index.
    keys = set(zip(episodes["worker_id"], episodes["ep_index"], strict=True))
    assert set(zip(steps["worker_id"], steps["ep_index"], strict=True)) == keys


def test_filtered_frames(finished_run: nbtrain.Run) -> None:
    run = finished_run
    seven = run.episodes(worker_id=7)
    assert len(seven) == EPISODES
    assert list(seven["worker_id"].cat.categories) == ["000007"]
    assert seven["ep_index"].tolist() == list(range(EPISODES))
    one_episode = run.steps(worker_id="gpu_a", ep_index=2)
    assert set(one_episode["ep_index"]) == {2}
    assert one_episode["step_index"].tolist() == list(range(len(one_episode)))
    assert str(one_episode["ts"].dtype).startswith("datetime64")
    assert "UTC" in str(one_episode["ts"].dtype)
    with pytest.raises(nbtrain.UnknownWorkerError):
        run.episodes(worker_id="nobody")


def test_summary_and_aggregate(finished_run: nbtrain.Run) -> None:
    summary = finished_run.summary()
    assert sorted(summary["worker_id"].astype(str)) == ["000001", "000007", "gpu_a"]
    assert list(summary.columns[:9]) == [
        "worker_id", "status", "exit_code", "episodes", "steps", "mean_return",
        "last100_return", "success_rate", "wall_time_s",
    ]  # fmt: skip
    assert (summary["episodes"] == EPISODES).all()
    assert (summary["exit_code"] == 0).all()
    agg = finished_run.aggregate()
    assert len(agg) == EPISODES
    assert (agg["n_workers"] == 3).all()


def test_unique_key_holds_in_sql(finished_run: nbtrain.Run, db: Path) -> None:
    con = sqlite3.connect(db)
    row = con.execute(
        "SELECT run_id, worker_id, ep_index, episode_id FROM episodes LIMIT 1"
    ).fetchone()
    with pytest.raises(sqlite3.IntegrityError):
        con.execute(
            "INSERT INTO episodes (run_id, worker_id, ep_index, episode_id) VALUES (?,?,?,?)",
            (row[0], row[1], row[2], row[3] + "x"),
        )
    nulls = con.execute("SELECT count(*) FROM steps WHERE worker_id IS NULL").fetchone()[0]
    assert nulls == 0
    pids = dict(
        con.execute(
            "SELECT worker_id, pid FROM workers WHERE run_id = ?", (finished_run.run_id,)
        ).fetchall()
    )
    assert all(isinstance(pid, int) and pid > 0 for pid in pids.values())
    con.close()


def test_same_digest_same_returns(finished_run: nbtrain.Run, db: Path) -> None:
    first = finished_run.episodes()
    again = nbtrain.launch(
        nbtrain.TrainConfig(
            env_id="FrozenLake-v1",
            env_kwargs={"is_slippery": False},
            agent="q_learning",
            episodes=EPISODES,
            max_steps_per_episode=50,
            seed=3,
            workers=[7, "gpu_a", None],
        ),
        db=db,
    )
    again.wait(timeout=120)
    second = again.episodes()
    cols = ["worker_id", "ep_index", "total_reward", "length", "seed"]
    pd.testing.assert_frame_equal(
        first[cols].sort_values(["worker_id", "ep_index"]).reset_index(drop=True),
        second[cols].sort_values(["worker_id", "ep_index"]).reset_index(drop=True),
    )


def test_open_reads_back_a_finished_run(finished_run: nbtrain.Run, db: Path) -> None:
    opened = nbtrain.Run.open(finished_run.run_id, db=db)
    assert opened.status() == finished_run.status()
    with pytest.raises(nbtrain.UnknownRunError):
        nbtrain.Run.open("01JAAAAAAAAAAAAAAAAAAAAAAA", db=db)


def test_opening_or_viewing_never_makes_a_database(finished_run: nbtrain.Run, db: Path) -> None:
    """Regression: Run.open on an empty file, and EpisodeViewer on a missing path, made a
    ~700 KB database where the user had only mistyped a path."""
    from nbtrain.widgets import EpisodeViewer

    rid = finished_run.run_id
    empty, missing = db.parent / "empty.sqlite", db.parent / "missing.sqlite"
    empty.touch()
    with pytest.raises(nbtrain.UnknownRunError, match="is an empty file: it holds no runs"):
        nbtrain.Run.open(rid, db=empty)
    with pytest.raises(nbtrain.UnknownRunError, match="no database at"):
        EpisodeViewer(rid, 1, 0, db=missing)
    with pytest.raises(TypeError, match="db must be a path, not NoneType"):
        nbtrain.Run.open(rid, db=None)  # type: ignore[arg-type]
    assert empty.stat().st_size == 0
    assert not missing.exists()
    assert not [p for p in db.parent.iterdir() if p.name.startswith(("empty.", "missing."))
                and p != empty]  # fmt: skip


def test_a_past_run_is_repeated_from_its_stored_config(finished_run: nbtrain.Run, db: Path) -> None:
    stored = json.loads(
        sqlite3.connect(db)
        .execute("SELECT config FROM runs WHERE run_id = ?", (finished_run.run_id,))
        .fetchone()[0]
    )
    config = nbtrain.Run.open(finished_run.run_id, db=db).config()
    assert config.canonical_payload() == stored
    again = nbtrain.launch(config, db=db)
    again.wait(timeout=120)
    cols = ["worker_id", "ep_index", "total_reward", "length"]
    first, second = (
        r.episodes()[cols].sort_values(["worker_id", "ep_index"]).reset_index(drop=True)
        for r in (finished_run, again)
    )
    pd.testing.assert_frame_equal(first, second)


def test_a_run_without_a_stored_config_says_so(finished_run: nbtrain.Run, db: Path) -> None:
    with sqlite3.connect(db) as conn:  # e.g. a run migrated from an old database
        conn.execute("UPDATE runs SET config = NULL WHERE run_id = ?", (finished_run.run_id,))
    with pytest.raises(nbtrain.ConfigError, match="has no stored config"):
        nbtrain.Run.open(finished_run.run_id, db=db).config()


def test_reading_a_run_whose_file_was_removed_names_it(tmp_path: Path) -> None:
    """Run.store promised UnknownRunError for a removed file, but once read it raised
    StoreAccessError ("cannot be opened")."""
    db = tmp_path / "gone.sqlite"
    run = nbtrain.launch({"env_id": "FrozenLake-v1", "episodes": 2}, db=db)
    run.wait(timeout=60)
    assert len(run.episodes()) == 2
    for path in tmp_path.glob("gone.sqlite*"):
        path.unlink()
    with pytest.raises(nbtrain.UnknownRunError, match="no database at"):
        run.episodes()


def test_every_reader_lists_the_workers_in_the_config_s_order(db: Path) -> None:
    """The owner listed ['gpu_b', 'gpu_a', '000001'] (config order), another process the
    same workers sorted."""
    run = nbtrain.launch(
        {"env_id": "FrozenLake-v1", "episodes": 2, "workers": ["gpu_b", "gpu_a", None]}, db=db
    )
    run.wait(timeout=60)
    elsewhere = nbtrain.Run(run.run_id, run.db, None)  # as Run.open gives in another process
    assert run.worker_ids == elsewhere.worker_ids == ["gpu_b", "gpu_a", "000001"]
    assert list(elsewhere.status()) == ["gpu_b", "gpu_a", "000001"]
    assert elsewhere.status() == run.status()
