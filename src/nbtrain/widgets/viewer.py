"""``EpisodeViewer``: replay one stored episode step by step (grid or observation, action,
reward, cumulative return) with a slider.

An episode is small (at most ``max_steps_per_episode`` rows), so it travels once as synced
state; the slider position is a trait too, so every view of the viewer shows the same step.
"""

from __future__ import annotations

import json
import os
from numbers import Integral
from typing import Any

import traitlets

from nbtrain.ids import normalize_worker_id
from nbtrain.log_codes import LOG_UI_DASHBOARD_CALLBACK_ERROR
from nbtrain.widgets._common import RequestWidget, bundle_trait, finite, reject_unknown_kwargs
from nbtrain.widgets.dashboard_store import stored_config
from nbtrain.widgets.envinfo import ACTION_LABELS, grid_for_env


class EpisodeViewer(RequestWidget):
    """``EpisodeViewer(run_id, worker_id, ep_index, db=...)``: one stored episode, replayed."""

    _esm = bundle_trait("viewer.js")
    _css = bundle_trait("viewer.css")
    _log_code = LOG_UI_DASHBOARD_CALLBACK_ERROR

    run_id = traitlets.Unicode("").tag(sync=True)
    worker_id = traitlets.Unicode("").tag(sync=True)
    ep_index = traitlets.Int(0).tag(sync=True)
    episode = traitlets.Dict().tag(sync=True)
    step = traitlets.Int(0).tag(sync=True)

    def __init__(
        self,
        run_id: str,
        worker_id: object,
        ep_index: int,
        db: str | os.PathLike[str] = "nbtrain.sqlite",
        **kwargs: Any,
    ) -> None:
        reject_unknown_kwargs("EpisodeViewer", kwargs, ("run_id", "worker_id", "ep_index", "db"))
        # any integer, numpy's included (what run.episodes()["ep_index"] holds)
        if isinstance(ep_index, bool) or not isinstance(ep_index, Integral) or ep_index < 0:
            raise ValueError(f"ep_index {ep_index!r} must be an integer >= 0")
        ep_index = int(ep_index)
        wid = normalize_worker_id(worker_id)
        episode = load_episode(db, run_id, wid, ep_index)
        super().__init__(run_id=run_id, worker_id=wid, ep_index=ep_index, episode=episode)

    @traitlets.validate("step")
    def _clamp_step(self, proposal: Any) -> int:
        n = len(self.episode.get("action", []))
        return max(0, min(int(proposal["value"]), n))

    def __repr__(self) -> str:
        n = len(self.episode.get("action", []))
        return (
            f"EpisodeViewer(run_id={self.run_id!r}, worker_id={self.worker_id!r}, "
            f"ep_index={self.ep_index}, steps={n})"
        )


def load_episode(
    db: str | os.PathLike[str], run_id: str, worker_id: str, ep_index: int
) -> dict[str, Any]:
    """The episode's steps and what is needed to draw them, as plain JSON."""
    from nbtrain.errors import UnknownRunError
    from nbtrain.store import TelemetryStore
    from nbtrain.store.files import existing_db

    store = TelemetryStore(existing_db(db))  # a mistyped path is an error, not a new file
    steps = store.steps(run_id, worker_id=worker_id, ep_index=ep_index)
    if len(steps) == 0:
        episodes = store.episodes(run_id, worker_id=worker_id, columns=["ep_index"])
        known = episodes["ep_index"].tolist()
        span = f"0..{max(known)}" if known else "none"
        raise UnknownRunError(  # (the episode is unknown; the run exists)
            f"run {run_id} worker {worker_id!r} has no stored steps for episode {ep_index} "
            f"(stored episodes: {span}; steps are kept only when telemetry.steps is 'all')"
        )
    stored = store.episodes(run_id, worker_id=worker_id, columns=["ep_index", "length"])
    length = stored.loc[stored["ep_index"] == ep_index, "length"]
    if len(length) and len(steps) < int(length.iloc[0]):
        raise ValueError(
            f"episode {ep_index} of worker {worker_id!r} has {len(steps)} of its "
            f"{int(length.iloc[0])} steps stored (the run recorded only some steps: "
            "telemetry.steps); the viewer replays whole episodes: record every step with "
            "telemetry={'steps': 'all'}"
        )
    config = stored_config(store, run_id)  # unreadable: replayed without a grid
    env_id = str(config.get("env_id", ""))
    env_kwargs = config.get("env_kwargs") or {}
    grid = None
    if env_id:
        try:
            grid = grid_for_env(env_id, dict(env_kwargs))
        except Exception:  # the replay still shows observations without a grid
            grid = None
    steps = steps.sort_values("step_index")
    rewards = [float(r) for r in steps["reward"]]
    cumulative, total = [], 0.0
    for reward in rewards:
        total += reward
        cumulative.append(total)
    return {
        "env_id": env_id,
        "grid": grid,
        "action_labels": ACTION_LABELS.get(grid["kind"], []) if grid else [],
        "step_index": [int(i) for i in steps["step_index"]],
        "action": [_jsonable(a) for a in steps["action"]],
        # NaN / inf as None (JSON-safe); a return after a NaN reward is unknown, so None too
        "reward": [finite(r) for r in rewards],
        "cumulative": [finite(c) for c in cumulative],
        "obs": [_jsonable(o) for o in steps["obs"]],
        "terminated": [bool(t) for t in steps["terminated"]],
        "truncated": [bool(t) for t in steps["truncated"]],
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
