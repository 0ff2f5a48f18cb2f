"""EpisodeViewer's payload on a run written with plain sqlite3 (no worker processes)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.kit.runs import add_run, make_db

from nbtrain.widgets.viewer import load_episode


def test_a_non_finite_reward_travels_as_none(tmp_path: Path) -> None:
    """Regression (widgets audit): a NaN reward (stored as null) reached the view as the
    string "nan" (jupyter_client's JSON), and the view's number formatting threw on it."""
    db = make_db(tmp_path / "x.sqlite")
    run_id = add_run(db, workers=1, episodes=1, steps=3)
    with sqlite3.connect(db) as con:
        rows = json.loads(con.execute("SELECT rows FROM step_chunks").fetchone()[0])
        rows[1][2] = None  # step 1's reward: what NaN is once stored
        con.execute("UPDATE step_chunks SET rows = ?", (json.dumps(rows),))
    con.close()
    episode = load_episode(db, run_id, "000001", 0)
    json.dumps(episode, allow_nan=False)
    assert episode["reward"] == [0.0, None, 0.0]
    assert episode["cumulative"] == [0.0, None, None]  # the return after it is unknown


def test_the_grid_comes_from_the_stored_config(tmp_path: Path) -> None:
    db = make_db(tmp_path / "x.sqlite")
    run_id = add_run(db, workers=1, episodes=1, steps=3)
    config = {"env_id": "FrozenLake-v1", "env_kwargs": {"is_slippery": False}}
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET config = ?", (json.dumps(config),))
    con.close()
    episode = load_episode(db, run_id, "000001", 0)
    assert episode["env_id"] == "FrozenLake-v1"
    assert episode["grid"] is not None
    assert episode["grid"]["kind"] == "frozenlake"
    assert episode["action_labels"]


def test_an_unreadable_stored_config_replays_without_a_grid(tmp_path: Path) -> None:
    """Regression (widgets audit): the viewer had its own config reader, which raised on a
    config that is not JSON; the dashboard's reader treats the config as decoration."""
    db = make_db(tmp_path / "x.sqlite")
    run_id = add_run(db, workers=1, episodes=1, steps=3)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET config = ?", ("{not json",))
    con.close()
    episode = load_episode(db, run_id, "000001", 0)
    assert (episode["env_id"], episode["grid"]) == ("", None)
    assert episode["step_index"] == [0, 1, 2]
