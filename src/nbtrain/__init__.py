"""nbtrain: run and study reinforcement-learning experiments from a Jupyter notebook.

The public surface is ``__all__``. Heavy parts (pandas, pydantic, widgets) load on first
use, because worker subprocesses import this package too and must start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nbtrain.errors import (
    ConfigError,
    CorruptStoreError,
    InvalidWorkerIdError,
    NbtrainError,
    ReadOnlyStoreError,
    RunError,
    SchemaVersionError,
    StoreAccessError,
    StoreError,
    StoreWriteError,
    UnknownRunError,
    UnknownWorkerError,
    WireError,
    WorkerFailedError,
)
from nbtrain.ids import format_episode_id, new_run_id, normalize_worker_id, parse_episode_id

if TYPE_CHECKING:
    from nbtrain.config import TelemetryConfig, TrainConfig, WorkerSpec
    from nbtrain.dispatch.process import LocalBackend
    from nbtrain.dispatch.ray_backend import RayBackend
    from nbtrain.run import Run, launch
    from nbtrain.store import TelemetryStore
    from nbtrain.store.frames import expand_extras
    from nbtrain.widgets import EpisodeViewer, RunBrowser, RunDashboard, TrainForm

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "CorruptStoreError",
    "EpisodeViewer",
    "InvalidWorkerIdError",
    "LocalBackend",
    "NbtrainError",
    "RayBackend",
    "ReadOnlyStoreError",
    "Run",
    "RunBrowser",
    "RunDashboard",
    "RunError",
    "SchemaVersionError",
    "StoreAccessError",
    "StoreError",
    "StoreWriteError",
    "TelemetryConfig",
    "TelemetryStore",
    "TrainConfig",
    "TrainForm",
    "UnknownRunError",
    "UnknownWorkerError",
    "WireError",
    "WorkerFailedError",
    "WorkerSpec",
    "__version__",
    "expand_extras",
    "format_episode_id",
    "launch",
    "new_run_id",
    "normalize_worker_id",
    "parse_episode_id",
]

_LAZY = {
    "TrainConfig": "nbtrain.config",
    "WorkerSpec": "nbtrain.config",
    "TelemetryConfig": "nbtrain.config",
    "launch": "nbtrain.run",
    "Run": "nbtrain.run",
    "TelemetryStore": "nbtrain.store",
    "expand_extras": "nbtrain.store.frames",
    "TrainForm": "nbtrain.widgets",
    "RunDashboard": "nbtrain.widgets",
    "EpisodeViewer": "nbtrain.widgets",
    "RunBrowser": "nbtrain.widgets",
    "LocalBackend": "nbtrain.dispatch.process",
    "RayBackend": "nbtrain.dispatch.ray_backend",
}


# Sub-packages reachable as attributes (``nbtrain.widgets.worker_colour``), loaded on use.
_SUBPACKAGES = frozenset({"agents", "config", "store", "widgets"})


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"nbtrain.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbtrain' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
