"""Notebook widgets: :class:`TrainForm`, :class:`RunDashboard`, :class:`EpisodeViewer`.

Their front-end lives in ``js/`` and is bundled into ``nbtrain/static`` (committed, so
installing nbtrain needs no Node). The message protocol is in docs/widgets.md.
"""

from __future__ import annotations

from nbtrain.widgets.browser import RunBrowser
from nbtrain.widgets.colours import worker_colour
from nbtrain.widgets.dashboard import RunDashboard
from nbtrain.widgets.form import TrainForm
from nbtrain.widgets.viewer import EpisodeViewer

__all__ = ["EpisodeViewer", "RunBrowser", "RunDashboard", "TrainForm", "worker_colour"]
