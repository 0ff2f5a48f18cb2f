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

from nbtrain.widgets.dashboard_data import LiveTracker, Packet
from nbtrain.widgets.envinfo import env_catalogue
from nbtrain.widgets.form_fields import count_preview, worker_preview
from nbtrain.widgets.form_spec import SECTIONS

_ENVS = {"FrozenLake-v1", "Taxi-v4", "CliffWalking-v1", "CartPole-v1", "MountainCarContinuous-v0"}
FIXTURE = Path(__file__).resolve().parents[2] / "js" / "test" / "fixtures" / "protocol.json"


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
        "snapshot": _encode(snapshot),
        "deltas": [_encode(first), _encode(second), _encode(third)],
        "form": {
            "sections": SECTIONS,
            "envs": [e for e in env_catalogue() if e["id"] in _ENVS],
            "workers_rows": rows,
            "workers_preview": worker_preview(rows),
            "count_preview": count_preview("3"),
        },
    }


def test_js_fixture_is_current() -> None:
    text = json.dumps(build_fixture(), indent=1, sort_keys=True) + "\n"
    if os.environ.get("NBTRAIN_UPDATE_FIXTURES") == "1":
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(text)
    assert FIXTURE.exists(), "missing js fixture; regenerate with NBTRAIN_UPDATE_FIXTURES=1"
    assert FIXTURE.read_text() == text, "js/test/fixtures/protocol.json is stale; regenerate it"
