"""A dashboard snapshot of a run that is not live in this kernel, read back from the store
(a finished run, one from before a kernel restart, or one running in another kernel)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from nbtrain.live.curve import bucket_episodes
from nbtrain.widgets._common import finite
from nbtrain.widgets.colours import worker_colours
from nbtrain.widgets.dashboard_data import RECENT, SCALARS, Packet, compact_recent, encode_curve
from nbtrain.widgets.outcome import outcome_text


def store_snapshot(db: Any, run_id: str) -> Packet:
    """A snapshot of a run that is not live in this kernel, read back from the store."""
    from nbtrain.store import TelemetryStore

    store = TelemetryStore(db)
    workers = store.workers(run_id)
    episodes = store.episodes(run_id)
    summary = store.run_summary(run_id).set_index("worker_id")
    config = stored_config(store, run_id)
    worker_ids = [str(w) for w in workers["worker_id"]]
    packet = Packet(
        {
            "kind": "snapshot",
            "seq": 0,
            "live": False,
            "run_id": run_id,
            "env_id": str(config.get("env_id", "")),
            "frames": frames_setting(config),
            "worker_ids": worker_ids,
            "colours": worker_colours(worker_ids),
            "outcome": None,
            "workers": {},
        }
    )
    for _, row in workers.iterrows():
        wid = str(row["worker_id"])
        mine = episodes.loc[episodes["worker_id"] == wid].sort_values(by="ep_index")
        arrays = {
            "ep_index": mine["ep_index"].to_numpy(dtype=np.int64),
            "total_reward": mine["total_reward"].to_numpy(dtype=np.float64),
            "length": mine["length"].to_numpy(dtype=np.int64),
        }
        n = len(arrays["ep_index"])
        level, buckets = bucket_episodes(
            arrays["ep_index"], arrays["total_reward"], arrays["length"]
        )
        steps_done = int(arrays["length"].sum())
        started, ended = _timestamp(row.get("started_at")), _timestamp(row.get("ended_at"))
        mine_summary = summary.loc[wid] if wid in summary.index else None
        scalars = dict.fromkeys(SCALARS)
        scalars.update(
            status=str(row["status"]),
            pid=_int_or_none(row.get("pid")),
            exit_code=_int_or_none(row.get("exit_code")),
            error=_plain(row.get("error")),
            traceback=_plain(row.get("traceback")),
            episodes_done=int(arrays["ep_index"][-1]) + 1 if n else 0,
            steps_done=steps_done,
            # the average over the worker's life: a stored run has no current rate
            steps_per_s=(
                steps_done / (ended - started)
                if started is not None and ended is not None and ended > started
                else 0.0
            ),
            ep_index=int(arrays["ep_index"][-1]) if n else 0,
            started_at=started,
            ended_at=ended,
            mean_return=_float_or_none(
                None if mine_summary is None else mine_summary["mean_return"]
            ),
            last100_return=_float_or_none(
                None if mine_summary is None else mine_summary["last100_return"]
            ),
            last20_return=float(buckets["roll"][-1]) if n else None,
        )
        scalars = {k: finite(v) for k, v in scalars.items()}  # NaN / inf: None in JSON
        tail = mine.tail(RECENT)
        recent = [
            {
                "ep_index": int(r["ep_index"]),
                "episode_id": str(r["episode_id"]),
                "total_reward": float(r["total_reward"]),
                "length": int(r["length"]),
                "terminated": bool(r["terminated"]),
                "truncated": bool(r["truncated"]),
                "ended_at": _timestamp(r["ended_at"]),
            }
            for _, r in tail.iterrows()
        ]
        packet.content["workers"][wid] = {
            "scalars": scalars,
            "curve": encode_curve(packet, buckets, level=level, reset=True),
            "recent": compact_recent(recent),
            "grid": None,
            "position": None,
        }
    packet.content["outcome"] = outcome_text(
        w["scalars"] for w in packet.content["workers"].values()
    )
    return packet


def stored_config(store: Any, run_id: str) -> dict[str, Any]:
    """The run's config as stored at launch; {} when it cannot be read (what the view takes
    from it, the env id and the frames setting, is decoration: a snapshot stays right)."""
    try:
        config = store.run(run_id)["config"]
        config = json.loads(config) if isinstance(config, str) else config
    except Exception:
        return {}
    return dict(config) if isinstance(config, dict) else {}


def frames_setting(config: dict[str, Any]) -> str | None:
    """``telemetry.frames`` of a stored config ("none", "ansi", "rgb_array"); None: unknown."""
    telemetry = config.get("telemetry")
    frames = telemetry.get("frames") if isinstance(telemetry, dict) else None
    return None if frames is None else str(frames)


def stored_frames(db: Any, run_id: str) -> str | None:
    """The frames setting of a run read from ``db`` (None: no such file, run or setting)."""
    from nbtrain.store import TelemetryStore
    from nbtrain.store.files import existing_db

    try:
        store = TelemetryStore(existing_db(db))  # never a new file at a mistyped path
    except Exception:
        return None
    return frames_setting(stored_config(store, run_id))


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):
        value = value.item()
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _float_or_none(value: Any) -> float | None:
    value = _plain(value)
    return None if value is None else float(value)


def _int_or_none(value: Any) -> int | None:
    value = _plain(value)
    return None if value is None else int(value)


def _timestamp(value: Any) -> float | None:
    try:
        value = _plain(value)
    except (TypeError, ValueError):
        return None
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        try:
            return float(value.timestamp())
        except (ValueError, OSError):
            return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
