"""The dashboard's ``vocab`` trait: the words and numbers the JS would otherwise restate,
taken from their Python homes."""

from __future__ import annotations

from typing import get_args

from widget_events import RUN_ID, new_live

from nbtrain.dispatch.session import FINAL_STATUSES
from nbtrain.live.curve import ROLLING
from nbtrain.live.hub import get_hub
from nbtrain.widgets import RunDashboard
from nbtrain.widgets.dashboard_data import RECENT
from nbtrain.widgets.envinfo import GRID_KINDS
from nbtrain.widgets.outcome import FINAL
from nbtrain.widgets.vocab import dashboard_vocab
from nbtrain.wire.events import WorkerStatus


def test_the_vocab_is_the_python_constants() -> None:
    vocab = dashboard_vocab()
    assert vocab["statuses"] == list(get_args(WorkerStatus))
    assert vocab["initial"] == "pending" == vocab["statuses"][0]
    assert set(vocab["final"]) == FINAL_STATUSES
    assert vocab["failure"] in vocab["final"]
    assert vocab["recent"] == RECENT
    assert vocab["rolling"] == ROLLING
    assert vocab["grid_kinds"] == list(GRID_KINDS)
    assert FINAL is FINAL_STATUSES  # no twin in widgets/


def test_every_dashboard_sends_it() -> None:
    live = get_hub().register(new_live(["000001"]))  # held: the hub keeps runs weakly
    try:
        dash = RunDashboard(RUN_ID)
        assert dash.worker_ids == list(live.worker_ids)
        assert dash.vocab == dashboard_vocab()
        assert "vocab" in dash.get_state()
        dash.close()
    finally:
        get_hub().discard(RUN_ID)
