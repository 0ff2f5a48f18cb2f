"""Per-worker summary and across-worker aggregates, computed mostly in SQL.

Definitions (documented in docs/store.md):

* ``episodes``: finished episodes stored; ``steps``: environment steps in them (sum of
  ``length``; the ``steps`` table may be sampled or off, so it is not counted);
* ``mean_return``: mean ``total_reward``; ``last100_return``: mean over the last 100 episodes;
* ``success_rate``: fraction of episodes that succeeded, as :data:`SUCCESS` defines it for
  the run's environment (FrozenLake: reached the goal; CliffWalking: reached the goal,
  although every return there is negative; CartPole: balanced until the time limit; …).
  For other environments: ``terminated`` with ``total_reward > 0``, and NaN when no episode
  of the run had a positive return (the environment may have no positive goal reward, so
  0.0 would be a claim nobody can make);
* ``wall_time_s``: ``ended_at - started_at`` of the worker; for a worker still running, up to
  now; without a worker row, the span of its episodes.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import numpy as np
import pandas as pd

from nbtrain.store.frames import frame
from nbtrain.store.queries import Reader

SUMMARY_KINDS = {
    "worker_id": "cat",
    "status": "str",
    "exit_code": "nint",
    "episodes": "int",
    "steps": "int",
    "mean_return": "float",
    "last100_return": "float",
    "success_rate": "float",
    "wall_time_s": "float",
}
AGGREGATE_METRICS = ("total_reward", "length", "terminated", "truncated")

GENERIC_SUCCESS = "terminated AND total_reward > 0"
# environment name (no version, no module) -> (SQL condition on an episode row, meaning)
SUCCESS: dict[str, tuple[str, str]] = {
    "FrozenLake": ("terminated AND total_reward > 0", "reached the goal"),
    "FrozenLake8x8": ("terminated AND total_reward > 0", "reached the goal"),
    "CliffWalking": ("terminated", "reached the goal (a fall resets, it never ends an episode)"),
    "Taxi": ("terminated", "delivered the passenger"),
    "CartPole": ("truncated AND NOT terminated", "kept the pole up until the time limit"),
    "MountainCar": ("terminated", "reached the flag"),
    "MountainCarContinuous": ("terminated", "reached the flag"),
    "Acrobot": ("terminated", "swung the tip above the line"),
    "Blackjack": ("total_reward > 0", "won the hand"),
}


def env_name(env_id: str) -> str:
    """``"FrozenLake-v1"`` and ``"pkg.mod:FrozenLake-v1"`` → ``"FrozenLake"``."""
    return re.sub(r"-v\d+$", "", env_id.rsplit(":", 1)[-1].rsplit("/", 1)[-1])


def success_definition(env_id: str) -> str:
    """What ``success_rate`` counts for ``env_id``, in words (docs, tooltips)."""
    rule = SUCCESS.get(env_name(env_id))
    if rule is not None:
        return f"{rule[1]} ({rule[0]})"
    return (
        f"ended terminated with a positive return ({GENERIC_SUCCESS}); "
        "NaN when no episode of the run had a positive return"
    )


def _success_sql(reader: Reader, run_id: str) -> tuple[str, bool]:
    """The run's success condition and whether it is the generic one."""
    rows = reader.rows("SELECT config FROM runs WHERE run_id = ?", (run_id,))
    env_id = ""
    if rows and rows[0][0]:
        try:
            config = json.loads(rows[0][0]) if isinstance(rows[0][0], str) else rows[0][0]
            env_id = str(config.get("env_id", "")) if isinstance(config, dict) else ""
        except ValueError:
            env_id = ""
    rule = SUCCESS.get(env_name(env_id)) if env_id else None
    return (GENERIC_SUCCESS, True) if rule is None else (rule[0], False)


_SUMMARY_SQL = """
WITH ids AS (
    SELECT worker_id FROM workers WHERE run_id = :run
    UNION SELECT DISTINCT worker_id FROM episodes WHERE run_id = :run
),
stats AS (
    SELECT worker_id, COUNT(*) AS n, SUM(length) AS steps, AVG(total_reward) AS mean_return,
           CASE WHEN {defined}
                THEN AVG(CASE WHEN {success} THEN 1.0 ELSE 0.0 END) END AS success,
           MIN(started_at) AS first_start, MAX(ended_at) AS last_end
    FROM episodes WHERE run_id = :run GROUP BY worker_id
),
last100 AS (
    SELECT worker_id, AVG(total_reward) AS r FROM (
        SELECT worker_id, total_reward,
               ROW_NUMBER() OVER (PARTITION BY worker_id ORDER BY ep_index DESC) AS rn
        FROM episodes WHERE run_id = :run
    ) WHERE rn <= 100 GROUP BY worker_id
)
SELECT ids.worker_id, w.status, w.exit_code, COALESCE(s.n, 0), COALESCE(s.steps, 0),
       s.mean_return, l.r, s.success, w.started_at, w.ended_at, s.first_start, s.last_end
FROM ids
LEFT JOIN workers w ON w.run_id = :run AND w.worker_id = ids.worker_id
LEFT JOIN stats s ON s.worker_id = ids.worker_id
LEFT JOIN last100 l ON l.worker_id = ids.worker_id
ORDER BY ids.worker_id
"""


def _wall_time(row: tuple[Any, ...], now: float) -> float | None:
    status, started, ended, first_start, last_end = row[1], row[8], row[9], row[10], row[11]
    if started is not None:
        if ended is not None:
            return float(ended - started)
        if status in ("running", "pending"):
            return max(0.0, now - float(started))
        if last_end is not None:
            return max(0.0, float(last_end - started))
        return None
    if first_start is not None and last_end is not None:
        return float(last_end - first_start)
    return None


def run_summary(reader: Reader, run_id: str) -> pd.DataFrame:
    """Exactly one row per worker of the run (also those without episodes)."""
    reader.check_run(run_id)
    success, generic = _success_sql(reader, run_id)
    defined = (
        "EXISTS (SELECT 1 FROM episodes WHERE run_id = :run AND total_reward > 0)"
        if generic
        else "1"
    )
    sql = _SUMMARY_SQL.format(success=success, defined=defined)
    rows = reader.rows(sql, {"run": run_id})
    now = time.time()
    names = list(SUMMARY_KINDS)
    table = [(*row[:8], _wall_time(row, now)) for row in rows]
    cols = list(zip(*table, strict=True)) if table else [() for _ in names]
    return frame(SUMMARY_KINDS, dict(zip(names, cols, strict=True)))


def interquartile_mean(values: np.ndarray[Any, Any]) -> float:
    """Mean of the middle half: drop floor(n/4) values at each end (``trim_mean(x, 0.25)``)."""
    ordered = np.sort(np.asarray(values, dtype="float64"))
    k = len(ordered) // 4
    middle = ordered[k : len(ordered) - k]
    return float(middle.mean()) if len(middle) else float("nan")


def aggregate(reader: Reader, run_id: str, metric: str = "total_reward") -> pd.DataFrame:
    """By ``ep_index`` (the index): mean, sd (sample, ddof=1), iqm, min, max, n_workers."""
    if metric not in AGGREGATE_METRICS:
        raise ValueError(f"cannot aggregate {metric!r}; metrics: {', '.join(AGGREGATE_METRICS)}")
    reader.check_run(run_id)
    rows = reader.rows(
        f"SELECT ep_index, CAST({metric} AS REAL) FROM episodes WHERE run_id = ? "
        f"ORDER BY ep_index, 2",
        (run_id,),
    )
    out_columns = ["mean", "sd", "iqm", "min", "max", "n_workers"]
    if not rows:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in out_columns})
        empty["n_workers"] = empty["n_workers"].astype("int64")
        empty.index = pd.Index([], dtype="int64", name="ep_index")
        return empty
    df = pd.DataFrame(rows, columns=["ep_index", "value"]).astype(
        {"ep_index": "int64", "value": "float64"}
    )
    groups = df.groupby("ep_index", sort=True)["value"]
    # Vectorized IQM: rows are sorted by (ep_index, value), so rank within group is cumcount.
    n = groups.transform("size")
    rank = groups.cumcount()
    k = n // 4
    middle = df["value"].where((rank >= k) & (rank < n - k))
    result = pd.DataFrame(
        {
            "mean": groups.mean(),
            "sd": groups.std(ddof=1),
            "iqm": middle.groupby(df["ep_index"]).mean(),
            "min": groups.min(),
            "max": groups.max(),
            "n_workers": groups.size().astype("int64"),
        }
    )
    result.index.name = "ep_index"
    return result
