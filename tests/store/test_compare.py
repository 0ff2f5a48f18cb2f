"""compare / compare_band: the per-episode mean (and sd) over each run's workers, checked
against the same numbers computed from plain sqlite3 rows."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pytest
from tests.kit.runs import add_run, make_db, sql

from nbtrain.errors import UnknownRunError
from nbtrain.store import TelemetryStore
from nbtrain.store.compare import compare_band


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "c.sqlite")


def test_compare_is_the_mean_over_each_runs_workers(db: Path) -> None:
    a = add_run(db, workers=3, episodes=5, reward=lambda w, ep: int(w) * 10 + ep)
    b = add_run(db, workers=2, episodes=3, reward=lambda w, ep: -ep * int(w))
    table = TelemetryStore(db).compare([b, a])
    assert list(table.columns) == [b, a]
    assert table.index.name == "ep_index"
    assert list(table.index) == [0, 1, 2, 3, 4]
    assert str(table[a].dtype) == "float64"
    for run_id in (a, b):
        truth = dict(
            sql(db, "SELECT ep_index, AVG(total_reward) FROM episodes WHERE run_id = ? "
                    "GROUP BY ep_index", (run_id,))
        )  # fmt: skip
        for ep, value in table[run_id].items():
            if ep in truth:
                assert value == pytest.approx(truth[ep])
            else:
                assert math.isnan(value)  # run b has only 3 episodes
    assert table.loc[4, a] == pytest.approx((14 + 24 + 34) / 3)


def test_compare_other_metrics_and_one_run(db: Path) -> None:
    a = add_run(db, workers=2, episodes=2, steps=7)
    assert TelemetryStore(db).compare(a, metric="length")[a].tolist() == [7.0, 7.0]
    assert TelemetryStore(db).compare([a], metric="terminated")[a].tolist() == [1.0, 1.0]


def test_compare_band_sd_across_workers(db: Path) -> None:
    a = add_run(db, workers=3, episodes=2, reward=lambda w, ep: int(w) * (ep + 1))
    one = add_run(db, workers=1, episodes=2)
    band = compare_band(TelemetryStore(db)._reader, [a, one])
    mine = band[band["run_id"] == a].set_index("ep_index")
    assert mine.loc[1, "mean"] == pytest.approx(4.0)
    assert mine.loc[1, "sd"] == pytest.approx(statistics.stdev([2, 4, 6]))
    assert mine["n_workers"].tolist() == [3, 3]
    assert np.isnan(band[band["run_id"] == one]["sd"]).all()  # one worker: no spread


@pytest.mark.parametrize(
    ("run_ids", "metric", "error", "match"),
    [
        ([], "total_reward", ValueError, "at least one run id"),
        (["A", "A"], "total_reward", ValueError, "given twice: A"),
        ([3], "total_reward", TypeError, "must be str"),
        (["RUN"], "reward", ValueError, "cannot compare 'reward'; metrics: total_reward"),
        (["01ARZ3NDEKTSV4RRFFQ69G5FAV"], "total_reward", UnknownRunError, "no run"),
    ],
)
def test_compare_bad_input(
    db: Path, run_ids: list[object], metric: str, error: type, match: str
) -> None:
    run = add_run(db, workers=1, episodes=1)
    ids = [run if r == "RUN" else r for r in run_ids]
    with pytest.raises(error, match=match):
        TelemetryStore(db).compare(ids, metric=metric)  # type: ignore[arg-type]
