"""DataFrames read back: dtypes, filters, errors, summary and aggregate numbers."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import pytest
from tests.kit.events import episode, full_episode, steps

import nbtrain
from nbtrain.errors import UnknownRunError, UnknownWorkerError
from nbtrain.ids import new_run_id
from nbtrain.log_codes import (
    LOG_SERVICE_SQLITE_DESERIALIZATION_FAILED,
    LOG_SERVICE_SQLITE_MIGRATED,
)
from nbtrain.store import SCHEMA_VERSION, TelemetryStore, migrate
from nbtrain.store.frames import expand_extras
from nbtrain.store.writer import acquire_writer

UTC_NS = pd.DatetimeTZDtype("ns", "UTC")
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_v0.sqlite"


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """Run A: workers 1 (3 episodes), 2 (2 episodes), 3 (none); run B: worker 1, array obs."""
    db = tmp_path_factory.mktemp("q") / "q.sqlite"
    w = acquire_writer(db)
    a, b = new_run_id(), new_run_id()
    for run in (a, b):
        w.create_run(run_id=run, name="n", created_at=time.time(), digest="d", config={"x": 1})
    for wid in (1, 2, 3):
        w.upsert_worker(a, wid, status="running", pid=100 + wid, started_at=1000.0)
    rewards = {"000001": [1.0, 0.0, 2.0], "000002": [3.0, 5.0]}
    for wid, rs in rewards.items():
        for ep, r in enumerate(rs):
            w.add_events(full_episode(a, wid, ep, n=2, total_reward=r, terminated=ep != 1))
    w.add_events([steps(a, "000002", 2, 2)])  # unfinished
    w.upsert_worker(a, 1, status="completed", exit_code=0, ended_at=1010.0)
    w.upsert_worker(a, 2, status="failed", exit_code=1, ended_at=1004.0, error="boom")
    w.upsert_worker(a, 3, status="failed", exit_code=-9, ended_at=1001.0)
    w.upsert_worker(b, 1, status="completed", exit_code=0, started_at=1.0, ended_at=2.0)
    w.add_events([steps(b, "000001", 0, 3, obs=lambda i: [i, 0.5]), episode(b, "000001", 0)])
    w.release()
    return db, a, b


def test_episode_dtypes(populated: tuple[Path, str, str]) -> None:
    db, a, _ = populated
    df = TelemetryStore(db).episodes(a)
    assert len(df) == 5
    assert df["worker_id"].dtype == "category"
    assert list(df["worker_id"].cat.categories) == ["000001", "000002"]
    expected = {"ep_index": "int64", "total_reward": "float64", "length": "int64",
                "terminated": "bool", "truncated": "bool", "seed": "int64"}  # fmt: skip
    assert {c: str(df[c].dtype) for c in expected} == expected
    assert df["started_at"].dtype == UTC_NS
    assert df["ended_at"].dtype == UTC_NS
    assert df["episode_id"].iloc[0] == f"{a}-w000001-ep000000"
    assert df["extras"].iloc[0] == '{"epsilon":0.1}'


def test_step_dtypes_discrete_and_array(populated: tuple[Path, str, str]) -> None:
    db, a, b = populated
    store = TelemetryStore(db)
    df = store.steps(a, worker_id=[1, 2])
    assert len(df) == 3 * 2 + 2 * 2 + 2
    assert list(df["worker_id"].cat.categories) == ["000001", "000002"]
    expected = dict.fromkeys(["ep_index", "step_index", "action", "obs"], "int64")
    expected |= {"reward": "float64", "terminated": "bool", "truncated": "bool"}
    assert {c: str(df[c].dtype) for c in expected} == expected
    assert df["ts"].dtype == UTC_NS
    one = store.steps(a, worker_id=7 - 6)
    assert list(one["worker_id"].cat.categories) == ["000001"]
    # exactly the workers in the frame: none in an empty one (it listed the filter's worker)
    none = store.steps(a, worker_id=1, ep_index=10**6)
    assert none.empty
    assert list(none["worker_id"].cat.categories) == []
    assert one["run_id"].unique().tolist() == [a]
    arr = store.steps(b)
    assert arr["obs"].tolist() == [[0, 0.5], [1, 0.5], [2, 0.5]]
    assert arr["action"].dtype == "int64"


def test_filters_and_columns(populated: tuple[Path, str, str]) -> None:
    db, a, _ = populated
    store = TelemetryStore(db)
    df = store.steps(a, "w2", ep_index=[0, 2], columns=["ep_index", "step_index", "worker_id"])
    assert list(df.columns) == ["ep_index", "step_index", "worker_id"]
    assert df["ep_index"].tolist() == [0, 0, 2, 2]
    assert store.steps(a, 2, ep_index=1)["step_index"].tolist() == [0, 1]
    assert store.steps(a, 1, columns="run_id")["run_id"].tolist() == [a] * 6
    eps = store.episodes(worker_id="000001", columns=["run_id", "ep_index"])
    assert len(eps) == 4  # both runs
    assert len(store.episodes()) == 6
    assert store.episodes(a, worker_id=3).empty
    assert store.steps(a, 3).empty


def test_an_unknown_run_error_carries_the_id_and_the_database(
    populated: tuple[Path, str, str], tmp_path: Path
) -> None:
    db, _, _ = populated
    store = TelemetryStore(db)
    missing = new_run_id()
    calls = [
        lambda: store.run(missing),
        lambda: store.episodes(missing),
        lambda: store.delete_run(missing),
        lambda: nbtrain.Run.open(missing, db=db),
    ]
    for call in calls:
        with pytest.raises(UnknownRunError) as caught:
            call()
        assert caught.value.run_id == missing
        assert caught.value.path == db.resolve()
    with pytest.raises(UnknownRunError) as caught:
        store.run("not-a-ulid")
    assert caught.value.run_id == "not-a-ulid"
    with pytest.raises(UnknownRunError) as caught:
        nbtrain.Run.open(missing, db=tmp_path / "absent.sqlite")
    assert caught.value.path == tmp_path / "absent.sqlite"


def test_bad_inputs(populated: tuple[Path, str, str]) -> None:
    db, a, _ = populated
    store = TelemetryStore(db)
    missing = new_run_id()
    with pytest.raises(UnknownRunError, match=missing):
        store.steps(missing)
    with pytest.raises(UnknownRunError):
        store.episodes(missing)
    with pytest.raises(UnknownRunError):
        store.run_summary(missing)
    with pytest.raises(UnknownWorkerError, match="'000009'"):
        store.steps(a, 9)
    with pytest.raises(UnknownWorkerError, match="000009"):
        store.episodes(worker_id=[1, 9])
    with pytest.raises(ValueError, match=r"'rewardz'.*valid columns: run_id"):
        store.steps(a, columns=["reward", "rewardz"])
    with pytest.raises(ValueError, match="gpu-a"):
        store.episodes(a, worker_id="gpu-a")
    with pytest.raises(ValueError, match="-1"):
        store.steps(a, ep_index=-1)
    with pytest.raises(ValueError, match="'seed'"):
        store.aggregate(a, metric="seed")


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        # regression: SQLite failed to bind it, and the error blamed the database file
        (lambda s, a: s.episodes([a]), TypeError, "run_id must be a str, not list"),
        (lambda s, a: s.run(5), TypeError, "run_id must be a str, not int"),
        (lambda s, a: s.workers(None), TypeError, "run_id must be a str, not NoneType"),
        (lambda s, a: s.steps(a.encode()), TypeError, "run_id must be a str, not bytes"),
        # regression: the characters of "12" were read as episode indexes ('1')
        (lambda s, a: s.steps(a, ep_index="12"), ValueError, "episode index '12'"),
        (lambda s, a: s.episodes(a, columns=5), TypeError, "columns must be a column name"),
        (lambda s, a: s.episodes(a, columns=[]), ValueError, "columns is empty; valid episode"),
        (lambda s, a: s.compare(None), TypeError, "run_ids must be a run id or a list"),
        (lambda s, a: s.compare(5), TypeError, "run_ids must be a run id or a list"),
    ],
)
def test_bad_argument_types_name_the_argument(
    populated: tuple[Path, str, str], call: object, error: type, match: str
) -> None:
    db, a, _ = populated
    with pytest.raises(error, match=match):
        call(TelemetryStore(db), a)  # type: ignore[operator]


@pytest.mark.parametrize(
    "call",
    [
        lambda: TelemetryStore(None),  # type: ignore[arg-type]
        lambda: nbtrain.TrainConfig.load(5),  # type: ignore[arg-type]
        lambda: nbtrain.launch({"env_id": "FrozenLake-v1", "episodes": 1}, db=123),  # type: ignore[arg-type]
    ],
)
def test_a_path_argument_that_is_not_a_path_is_a_type_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: object
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match=r"(db|path) must be a (file )?path, not (NoneType|int)"):
        call()  # type: ignore[operator]
    assert list(tmp_path.iterdir()) == []


def test_runs_and_workers(populated: tuple[Path, str, str]) -> None:
    db, a, b = populated
    store = TelemetryStore(db)
    runs = store.runs()
    assert set(runs["run_id"]) == {a, b}
    assert runs["config"].iloc[0] == {"x": 1}
    assert runs["created_at"].dtype == UTC_NS
    workers = store.workers(a)
    assert workers["worker_id"].tolist() == ["000001", "000002", "000003"]
    assert workers["exit_code"].tolist() == [0, 1, -9]
    assert workers["pid"].dtype == "float64"
    assert workers["error"].iloc[1] == "boom"


def test_run_summary_one_row_per_worker(populated: tuple[Path, str, str]) -> None:
    db, a, _ = populated
    s = TelemetryStore(db).run_summary(a)
    assert list(s.columns) == [
        "worker_id",
        "status",
        "exit_code",
        "episodes",
        "steps",
        "mean_return",
        "last100_return",
        "success_rate",
        "wall_time_s",
    ]
    assert s["worker_id"].tolist() == ["000001", "000002", "000003"]
    assert s["status"].tolist() == ["completed", "failed", "failed"]
    assert s["exit_code"].tolist() == [0, 1, -9]
    assert s["episodes"].tolist() == [3, 2, 0]
    assert s["steps"].tolist() == [6, 4, 0]
    assert s["mean_return"].iloc[0] == pytest.approx(1.0)
    assert s["mean_return"].iloc[1] == pytest.approx(4.0)
    assert np.isnan(s["mean_return"].iloc[2])
    # worker 1: episodes (1.0, term), (0.0, trunc), (2.0, term) -> 2/3 succeed
    assert s["success_rate"].iloc[0] == pytest.approx(2 / 3)
    assert s["success_rate"].iloc[1] == pytest.approx(0.5)
    assert s["wall_time_s"].tolist() == [10.0, 4.0, 1.0]
    assert s["episodes"].dtype == "int64"
    assert s["worker_id"].dtype == "category"


def test_last100_uses_last_episodes(tmp_path: Path) -> None:
    db = tmp_path / "l.sqlite"
    w = acquire_writer(db)
    run = new_run_id()
    w.create_run(run_id=run, name="n", created_at=0.0, digest="", config={})
    for ep in range(120):
        w.add_events(full_episode(run, "000001", ep, n=1, total_reward=float(ep >= 20)))
    w.release()
    s = TelemetryStore(db).run_summary(run)
    assert s["last100_return"].iloc[0] == pytest.approx(1.0)
    assert s["mean_return"].iloc[0] == pytest.approx(100 / 120)


def test_aggregate_by_hand(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite"
    w = acquire_writer(db)
    run = new_run_id()
    w.create_run(run_id=run, name="n", created_at=0.0, digest="", config={})
    values = {"000001": [1.0, 10.0], "000002": [2.0], "000003": [3.0], "000004": [100.0]}
    for wid, rs in values.items():
        for ep, r in enumerate(rs):
            w.add_events(full_episode(run, wid, ep, n=1, total_reward=r))
    w.release()
    agg = TelemetryStore(db).aggregate(run)
    assert agg.index.name == "ep_index"
    assert agg.index.tolist() == [0, 1]
    row = agg.loc[0]
    assert row["mean"] == pytest.approx(26.5)
    assert row["sd"] == pytest.approx(np.std([1, 2, 3, 100], ddof=1))
    assert row["iqm"] == pytest.approx(2.5)  # drop 1 and 100
    assert (row["min"], row["max"], row["n_workers"]) == (1.0, 100.0, 4)
    assert agg.loc[1, "n_workers"] == 1
    assert np.isnan(agg.loc[1, "sd"])
    assert agg["n_workers"].dtype == "int64"
    lengths = TelemetryStore(db).aggregate(run, metric="length")
    assert lengths.loc[0, "mean"] == 1.0


def test_expand_extras(populated: tuple[Path, str, str]) -> None:
    db, a, _ = populated
    df = expand_extras(TelemetryStore(db).steps(a, 1), prefix="x_")
    assert "extras" not in df.columns
    assert df["x_epsilon"].dtype == "float64"
    assert df["x_i"].tolist() == [0.0, 1.0] * 3
    with pytest.raises(ValueError, match="'nope'"):
        expand_extras(df, column="nope")


def test_frames_expand_extras_on_request(populated: tuple[Path, str, str]) -> None:
    """``extras="columns"`` gives what ``nbtrain.expand_extras`` gives; bad use is named."""
    db, a, _ = populated
    store = TelemetryStore(db)
    wide = store.steps(a, 1, extras="columns")
    pd.testing.assert_frame_equal(wide, nbtrain.expand_extras(store.steps(a, 1)))
    assert store.episodes(a, 1, extras="columns").columns.tolist() == (
        expand_extras(store.episodes(a, 1)).columns.tolist()
    )
    with pytest.raises(ValueError, match="needs the 'extras' column"):
        store.steps(a, 1, columns=["step_index"], extras="columns")
    with pytest.raises(ValueError, match="'json' or 'columns', not 'wide'"):
        store.steps(a, 1, extras="wide")  # type: ignore[arg-type]


def test_an_extras_key_named_like_a_column_is_renamed_not_an_error(tmp_path: Path) -> None:
    """Regression: an agent whose extras hold ``length`` made ``extras="columns"`` fail with
    "pass a prefix", which Run.episodes cannot take."""
    db = tmp_path / "clash.sqlite"
    w = acquire_writer(db)
    run = new_run_id()
    w.create_run(run_id=run, name="n", created_at=time.time(), digest="d", config={})
    w.upsert_worker(run, 1, status="completed")
    extras = {"length": 5, "epsilon": 0.1, "extras_length": 7}
    made = msgspec.structs.replace(episode(run, "000001", 0), extras=extras)
    w.add_events([made])
    w.release()
    store = TelemetryStore(db)
    wide = store.episodes(run, extras="columns")
    assert wide["length"].tolist() == [made.length]  # the column
    assert wide["extras_length_2"].tolist() == [5.0]  # the agent's key
    assert wide["extras_length"].tolist() == [7.0]  # (it has one of that name too)
    assert wide.columns.is_unique
    assert wide["epsilon"].tolist() == [0.1]
    with pytest.raises(ValueError, match=r"clash with columns; pass prefix="):
        expand_extras(store.episodes(run))
    assert "x_length" in expand_extras(store.episodes(run), prefix="x_").columns


def test_chunks_written_by_hand_are_read_leniently(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """NULLs, 0/1 flags and a chunk that is not JSON: read what can be read, log the rest."""
    db = tmp_path / "h.sqlite"
    migrate(db)
    run = new_run_id()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO runs(run_id) VALUES (?)", (run,))
    conn.execute("INSERT INTO workers(run_id, worker_id) VALUES (?, '000001')", (run,))
    sql = (  # one-episode chunks as schema 3 wrote them (no last_ep, rows without ep_index)
        "INSERT INTO step_chunks(run_id, worker_id, ep_index, first_step, n_steps, rows) "
        "VALUES (?, '000001', ?, ?, ?, ?)"
    )
    conn.execute(sql, (run, 0, 0, 2, '[[0,1,null,0,1,5,null,1.5],[1,2,1,1,0,6,{"a":1},2.5]]'))
    conn.execute(sql, (run, 1, 0, 1, "not json"))
    conn.execute(sql, (run, 2, 0, 1, "[[0,1,0.5]]"))  # wrong row shape
    conn.execute(sql, (run, 3, 0, 0, "[]"))
    spans = (  # chunks spanning episodes (schema 4): each row ends with its ep_index
        "INSERT INTO step_chunks(run_id, worker_id, ep_index, first_step, n_steps, last_ep, "
        "rows) VALUES (?, '000001', ?, 0, ?, ?, ?)"
    )
    conn.execute(spans, (run, 4, 1, 4, "[[0,1,0.5,false,false,3,{},1.0]]"))  # no ep_index
    conn.execute(spans, (run, 5, 1, 5, '[[0,1,0.5,false,false,3,{},1.0,"5"]]'))  # not an int
    conn.execute(spans, (run, 6, 2, 7, "[[0,1,0.5,0,1,3,{},3.0,6],[0,2,1,1,0,4,{},4.0,7]]"))
    conn.commit()
    conn.close()
    caplog.set_level(logging.WARNING, logger="nbtrain")
    df = TelemetryStore(db).steps(run, 1)
    assert df["step_index"].tolist() == [0, 1, 0, 0]
    assert df["ep_index"].tolist() == [0, 0, 6, 7]
    assert df["reward"].isna().tolist() == [True, False, False, False]
    assert df["terminated"].tolist() == [False, True, False, True]
    assert df["truncated"].tolist() == [True, False, True, False]
    assert df["extras"].isna().tolist() == [True, False, False, False]
    assert df["extras"].iloc[1] == '{"a":1}'
    assert df["ts"].iloc[1] == pd.Timestamp(2.5, unit="s", tz="UTC")
    assert str(df["reward"].dtype) == "float64"
    assert str(df["terminated"].dtype) == "bool"
    failed = [r for r in caplog.records if r.code == LOG_SERVICE_SQLITE_DESERIALIZATION_FAILED]
    assert len(failed) == 1
    assert "4 stored step chunk(s)" in failed[0].getMessage()
    assert TelemetryStore(db).steps(run, 1, ep_index=7)["action"].tolist() == [2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2024-01-02T03:04:05", "2024-01-02T03:04:05Z"),
     ("2024-01-02 03:04:05.250", "2024-01-02T03:04:05.250Z")],
)  # fmt: skip
def test_legacy_text_times_keep_their_seconds(tmp_path: Path, text: str, expected: str) -> None:
    """Regression: '03:04:05' came back as 03:04:04.999998808."""
    db = tmp_path / "legacy.sqlite"
    shutil.copy(FIXTURE, db)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE runs SET created_at = ?", (text,))
    conn.close()
    assert TelemetryStore(db).runs()["created_at"].iloc[0] == pd.Timestamp(expected)


def test_legacy_fixture_is_upgraded_in_place(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "legacy.sqlite"
    shutil.copy(FIXTURE, db)
    caplog.set_level(logging.INFO, logger="nbtrain")
    store = TelemetryStore(db)
    assert LOG_SERVICE_SQLITE_MIGRATED in [getattr(r, "code", None) for r in caplog.records]
    runs = store.runs()
    run = runs["run_id"].iloc[0]
    assert runs["created_at"].iloc[0] == pd.Timestamp("2024-03-01T12:00:00Z")
    eps = store.episodes(run)
    assert eps["worker_id"].tolist() == ["000001"] * 3
    assert eps["episode_id"].tolist() == [f"{run}-w000001-ep{i:06d}" for i in range(3)]
    st = store.steps(run)
    assert len(st) == 2 + 3 + 2 + 2
    assert (st["extras"].str.len() > 0).all()
    s = store.run_summary(run)
    assert s["worker_id"].tolist() == ["000001"]
    assert s["episodes"].tolist() == [3]
    assert st["step_index"].tolist() == [0, 1, 0, 1, 2, 0, 1, 0, 1]
    assert st["terminated"].tolist() == [False, True, False, False, True, False, True, False, False]
    assert st["extras"].tolist()[:2] == ['{"epsilon":0.5}', "{}"]  # NULL -> {}
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    info = {r[1]: r for r in conn.execute("PRAGMA table_info(step_chunks)")}
    assert info["worker_id"][3] == 1
    chunks = conn.execute("SELECT worker_id, ep_index, first_step, n_steps FROM step_chunks")
    assert chunks.fetchall() == [("000001", i, 0, n) for i, n in enumerate((2, 3, 2, 2))]
    assert not conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '_legacy%'").fetchall()
    view = pd.read_sql_query("SELECT * FROM steps ORDER BY ep_index, step_index", conn)
    assert view["step_index"].tolist() == st["step_index"].tolist()
    assert view["extras"].tolist() == st["extras"].tolist()
    # resuming the legacy worker drops its unfinished episode and continues at 3
    w = acquire_writer(db)
    try:
        assert w.discard_unfinished_steps(run, 1) == 3
    finally:
        w.release()
    assert len(store.steps(run)) == 7
