"""Comparing runs episode by episode: ``compare`` (the mean over each run's workers) and
``compare_band`` (mean, sd and worker count per run, for overlaid learning curves).

Both aggregate in SQL (``GROUP BY run_id, ep_index``), so a run of many workers costs one
row per episode index, not one per episode.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from nbtrain.store.queries import Reader
from nbtrain.store.summary import AGGREGATE_METRICS


def run_list(run_ids: str | Iterable[str]) -> list[str]:
    """The run ids as a list (a single id is accepted); empty or repeated ids are errors."""
    if isinstance(run_ids, str):
        ids = [run_ids]
    elif isinstance(run_ids, Iterable) and not isinstance(run_ids, bytes):
        ids = list(run_ids)
    else:
        raise TypeError(f"run_ids must be a run id or a list of them, not {type(run_ids).__name__}")
    if not ids:
        raise ValueError("compare needs at least one run id")
    bad = [r for r in ids if not isinstance(r, str)]
    if bad:
        raise TypeError(f"run ids must be str, got {bad[0]!r}")
    repeated = sorted({r for r in ids if ids.count(r) > 1})
    if repeated:
        raise ValueError(f"run id(s) given twice: {', '.join(repeated)}")
    return ids


def _check_metric(metric: str) -> None:
    if metric not in AGGREGATE_METRICS:
        raise ValueError(f"cannot compare {metric!r}; metrics: {', '.join(AGGREGATE_METRICS)}")


def _grouped(reader: Reader, ids: list[str], metric: str) -> pd.DataFrame:
    _check_metric(metric)
    for run_id in ids:
        reader.check_run(run_id)
    marks = ", ".join("?" * len(ids))
    rows = reader.rows(
        f"SELECT run_id, ep_index, COUNT(*), SUM(v), SUM(v * v) FROM "
        f"(SELECT run_id, ep_index, CAST({metric} AS REAL) AS v FROM episodes "
        f"WHERE run_id IN ({marks}) AND {metric} IS NOT NULL) "
        f"GROUP BY run_id, ep_index ORDER BY run_id, ep_index",
        ids,
    )
    df = pd.DataFrame(rows, columns=["run_id", "ep_index", "n", "s", "ss"])
    return df.astype({"run_id": "object", "ep_index": "int64", "n": "int64", "s": "float64",
                      "ss": "float64"})  # fmt: skip


def compare(
    reader: Reader, run_ids: str | Iterable[str], metric: str = "total_reward"
) -> pd.DataFrame:
    """By ``ep_index`` (the index), one column per run (in the order given): the mean of
    ``metric`` over the run's workers; NaN where a run has no such episode."""
    ids = run_list(run_ids)
    df = _grouped(reader, ids, metric)
    df["mean"] = df["s"] / df["n"]
    wide = df.pivot(index="ep_index", columns="run_id", values="mean")
    wide = wide.reindex(columns=ids).astype("float64")
    wide.index = pd.Index(wide.index.astype("int64"), name="ep_index")
    wide.columns = pd.Index(ids, name="run_id")
    return wide


def compare_band(
    reader: Reader, run_ids: str | Iterable[str], metric: str = "total_reward"
) -> pd.DataFrame:
    """Long form: ``run_id, ep_index, mean, sd, n_workers``; ``sd`` is the sample standard
    deviation across the run's workers (NaN with one worker), as ``Run.aggregate`` gives it."""
    ids = run_list(run_ids)
    df = _grouped(reader, ids, metric)
    n = df["n"].to_numpy()
    mean = df["s"].to_numpy() / np.maximum(n, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (df["ss"].to_numpy() - n * mean * mean) / (n - 1)
    sd = np.where(n > 1, np.sqrt(np.clip(var, 0.0, None)), np.nan)
    return pd.DataFrame(
        {
            "run_id": df["run_id"],
            "ep_index": df["ep_index"],
            "mean": mean,
            "sd": sd,
            "n_workers": df["n"],
        }
    )
