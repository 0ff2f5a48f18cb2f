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
