"""The words and numbers a dashboard view needs from Python, sent as its ``vocab`` trait so
that the JS restates none of them (issue 14): the worker statuses (in lifecycle order, the
first is a new worker's), which of them are final, how many recent episodes the table
holds, the window of the rolling mean the kernel computes, and the grid kinds it draws.
"""

from __future__ import annotations

from typing import Any, get_args

from nbtrain.live.curve import ROLLING
from nbtrain.statuses import FINAL_STATUSES
from nbtrain.widgets.dashboard_data import RECENT
from nbtrain.widgets.envinfo import GRID_KINDS
from nbtrain.wire.events import WorkerStatus

STATUSES: tuple[str, ...] = get_args(WorkerStatus)


def dashboard_vocab() -> dict[str, Any]:
    """The ``vocab`` trait of a :class:`~nbtrain.widgets.RunDashboard` (docs/widgets.md)."""
    return {
        "statuses": list(STATUSES),
        "initial": STATUSES[0],
        "final": [s for s in STATUSES if s in FINAL_STATUSES],
        "failure": "failed",
        "recent": RECENT,
        "rolling": ROLLING,
        "grid_kinds": list(GRID_KINDS),
    }


__all__ = ["STATUSES", "dashboard_vocab"]
