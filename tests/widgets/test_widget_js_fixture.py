"""The JS tests replay messages the Python side really produces (js/test/fixtures/protocol.json).

This test rebuilds them and fails when they drift from the committed fixture, so a change
to the protocol in Python cannot leave the JS tests testing an old one. Regenerate with
``NBTRAIN_UPDATE_FIXTURES=1 pytest tests/widgets/test_widget_js_fixture.py``.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from widget_events import episode, grid, new_live, progress, started, steps

from nbtrain.config.agentref import TABULAR_AGENTS
from nbtrain.widgets.dashboard_data import LiveTracker, Packet
from nbtrain.widgets.envinfo import AGENT_SPACES, env_catalogue
from nbtrain.widgets.form_fields import count_preview, worker_preview
from nbtrain.widgets.form_help import AGENT_HELP, sections_with_help
from nbtrain.widgets.form_spec import AGENTS, SECTIONS, hyper_by_agent
from nbtrain.widgets.vocab import dashboard_vocab

_ENVS = {
    "FrozenLake-v1",
    "Taxi-v4",
    "CliffWalking-v1",
    "CartPole-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
}
FIXTURE = Path(__file__).resolve().parents[2] / "js" / "test" / "fixtures" / "protocol.json"
CURVES = FIXTURE.parent / "curves.json"
CURVE_EPISODES = 800  # past 512, so the curve's buckets merge once (level 1)
EPISODE_RATES = (7, 60, 700)  # episodes per dashboard tick


def _encode(packet: Packet) -> dict[str, Any]:
    return {
        "content": packet.content,
        "buffers": [base64.b64encode(b).decode() for b in packet.buffers],
    }


def build_fixture() -> dict[str, Any]:
    live = new_live(["000001", "000007"], episodes=10)
    tracker = LiveTracker(live)
    live.apply_many([started("000001"), started("000007", pid=4243), grid("000001")])
    live.apply_many([episode("000001", i, reward=float(i % 2), length=4 + i) for i in range(3)])
    live.apply(steps("000001", 3, [4, 8]))
    first = tracker.delta(now=100.0)
    live.apply_many([episode("000001", i, reward=1.0, length=6) for i in range(3, 6)])
    live.apply_many([episode("000007", i, reward=0.5, length=3) for i in range(4)])
    live.apply(progress("000007", 4, 12))
    second = tracker.delta(now=101.0)
    snapshot = tracker.snapshot()
    live.apply(episode("000001", 6, reward=0.0, length=2))
    third = tracker.delta(now=102.0)
    assert first is not None
    assert second is not None
    assert third is not None
    rows = ["7", "gpu-a", "", "000007", "w3"]
    return {
        "vocab": dashboard_vocab(),
        "snapshot": _encode(snapshot),
        "deltas": [_encode(first), _encode(second), _encode(third)],
        "form": {
            "sections": sections_with_help(SECTIONS),
            "agent_help": AGENT_HELP,
            "tabular_agents": list(TABULAR_AGENTS),
            "agent_spaces": AGENT_SPACES,
            "agent_hyper": hyper_by_agent(),
            "agents": list(AGENTS),
            "envs": [e for e in env_catalogue() if e["id"] in _ENVS],
            "workers_rows": rows,
            "workers_preview": worker_preview(rows),
            "count_preview": count_preview("3"),
        },
    }


def _returns() -> list[float]:
    """FrozenLake-like returns (0 or 1) that get better with time; fixed, no randomness."""
    return [float((i * 7919) % 1000 < i * 0.6) for i in range(CURVE_EPISODES)]


def build_curves() -> dict[str, Any]:
    """A worker's episodes, pandas' rolling mean of 20 over them, and what dashboards get:
    the live deltas at several episode rates, and the snapshot rebuilt from the store."""
    import numpy as np
    import pandas as pd

    from nbtrain.live.curve import bucket_episodes
    from nbtrain.widgets.dashboard_data import encode_curve

    returns = _returns()
    lengths = [3 + i % 11 for i in range(CURVE_EPISODES)]
    live_runs = {}
    for rate in EPISODE_RATES:
        live = new_live(["000001"], episodes=CURVE_EPISODES)
        tracker = LiveTracker(live)
        deltas = []
        for start in range(0, CURVE_EPISODES, rate):
            batch = range(start, min(start + rate, CURVE_EPISODES))
            live.apply_many([episode("000001", i, returns[i], lengths[i]) for i in batch])
            packet = tracker.delta(now=1000.0 + start)
            if packet is not None:
                deltas.append(_encode(packet))
        live_runs[str(rate)] = deltas
    ep = np.arange(CURVE_EPISODES)
    level, buckets = bucket_episodes(ep, np.asarray(returns), np.asarray(lengths))
    stored = Packet({})
    stored.content = {"curve": encode_curve(stored, buckets, level=level, reset=True)}
    rolling = pd.Series(returns).rolling(20, min_periods=1).mean()
    return {
        "returns": returns,
        "lengths": lengths,
        "rolling20": [round(float(v), 12) for v in rolling],
        "live": live_runs,
        "store": _encode(stored),
    }


def _check(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if os.environ.get("NBTRAIN_UPDATE_FIXTURES") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing {path.name}; regenerate with NBTRAIN_UPDATE_FIXTURES=1"
    assert path.read_text() == text, f"js/test/fixtures/{path.name} is stale; regenerate it"


def test_js_fixture_is_current() -> None:
    _check(FIXTURE, build_fixture())


def test_js_curve_fixture_is_current() -> None:
    _check(CURVES, build_curves())
