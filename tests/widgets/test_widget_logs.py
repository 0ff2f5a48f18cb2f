"""The widgets log with DESIGN's codes: a launch from the form at INFO, dashboard updates at
DEBUG (never per step at INFO)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from nbtrain.log_codes import LOG_LIVE_CONTROLLER_BUFFER_STEPS_FLUSHED, LOG_UI_TRAIN_FORM_INFO
from nbtrain.widgets import TrainForm


def test_form_launch_and_dashboard_updates_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    form = TrainForm(db=tmp_path / "x.sqlite", env_id="FrozenLake-v1", episodes=30)
    sent: list[dict[str, Any]] = []
    form.core._send_message = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    with caplog.at_level(logging.DEBUG, logger="nbtrain"):
        form.core._handle_custom_msg({"kind": "request", "id": "L1", "method": "launch"}, [])
        assert sent[-1]["ok"] is True, sent[-1]
        run = form.run
        assert run is not None
        run.wait(timeout=60)
        dashboard = form.children[1]
        dashboard._handle_custom_msg({"kind": "request", "id": "h", "method": "hello"}, [])
    infos = [r for r in caplog.records if getattr(r, "code", None) == LOG_UI_TRAIN_FORM_INFO]
    assert len(infos) == 1
    assert infos[0].levelno == logging.INFO
    assert getattr(infos[0], "run_id", None) == run.run_id
    flushed = [
        r
        for r in caplog.records
        if getattr(r, "code", None) == LOG_LIVE_CONTROLLER_BUFFER_STEPS_FLUSHED
    ]
    assert flushed
    assert all(r.levelno == logging.DEBUG for r in flushed)
    dashboard.close()
