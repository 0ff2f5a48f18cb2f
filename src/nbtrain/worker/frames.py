"""What a front-end needs to draw the environment: grid layouts of the toy-text worlds and
rendered frames, kept small and rare enough not to slow training down."""

from __future__ import annotations

import time
from typing import Any, Literal

from nbtrain.wire.events import Frame, GridMap

GridKind = Literal["frozenlake", "cliffwalking", "taxi"]

# Rendering costs milliseconds; a person cannot follow more than this many frames a second.
MAX_FRAMES_PER_S = 30.0
# rgb_array frames are subsampled so the longer side stays under this many pixels.
MAX_FRAME_SIDE = 320

_GRID_CLASSES: dict[str, GridKind] = {
    "FrozenLakeEnv": "frozenlake",
    "CliffWalkingEnv": "cliffwalking",
    "TaxiEnv": "taxi",
}


def grid_layout(env: Any) -> tuple[GridKind, list[str]] | None:
    """``(kind, rows)`` for FrozenLake, CliffWalking and Taxi; None for any other env.

    FrozenLake and Taxi rows are the env's own ``desc``; CliffWalking has none, so its rows
    are spelled in the same letters: ``S`` start, ``G`` goal, ``C`` cliff, ``.`` free.
    """
    unwrapped = getattr(env, "unwrapped", env)
    kind = _GRID_CLASSES.get(type(unwrapped).__name__)
    if kind is None:
        return None
    if kind == "cliffwalking":
        return kind, _cliff_rows(unwrapped)
    desc = getattr(unwrapped, "desc", None)
    if desc is None:
        return None
    rows = ["".join(c.decode() if isinstance(c, bytes) else str(c) for c in row) for row in desc]
    return kind, rows


def _cliff_rows(env: Any) -> list[str]:
    n_rows, n_cols = (int(x) for x in getattr(env, "shape", (4, 12)))
    cliff = getattr(env, "_cliff", None)
    start = int(getattr(env, "start_state_index", (n_rows - 1) * n_cols))
    rows = []
    for r in range(n_rows):
        cells = []
        for c in range(n_cols):
            index = r * n_cols + c
            if index == start:
                cells.append("S")
            elif r == n_rows - 1 and c == n_cols - 1:
                cells.append("G")
            elif cliff is not None and bool(cliff[r][c]):
                cells.append("C")
            else:
                cells.append(".")
        rows.append("".join(cells))
    return rows


def grid_event(
    run_id: str, worker_id: str, ep_index: int, layout: tuple[GridKind, list[str]]
) -> GridMap:
    kind, rows = layout
    return GridMap(run_id=run_id, worker_id=worker_id, ep_index=ep_index, kind=kind, rows=rows)


class FrameMaker:
    """Renders ``env`` into :class:`Frame` events, at most :data:`MAX_FRAMES_PER_S` a second."""

    def __init__(self, env: Any, kind: Literal["ansi", "rgb_array"], run_id: str, worker_id: str):
        self.env = env
        self.kind = kind
        self.run_id = run_id
        self.worker_id = worker_id
        self._next_at = 0.0

    def frame(self, ep_index: int, step_index: int, force: bool = False) -> Frame | None:
        """A frame of the env as it is now, or None when one was sent too recently."""
        now = time.monotonic()
        if not force and now < self._next_at:
            return None
        self._next_at = now + 1.0 / MAX_FRAMES_PER_S
        image = self.env.render()
        common: dict[str, Any] = {
            "run_id": self.run_id,
            "worker_id": self.worker_id,
            "ep_index": ep_index,
            "step_index": step_index,
        }
        if self.kind == "ansi":
            return Frame(**common, kind="ansi", text=str(image))
        data, shape = rgb_bytes(image)
        return Frame(**common, kind="rgb_array", data=data, shape=shape)


def rgb_bytes(image: Any) -> tuple[bytes, list[int]]:
    """Raw uint8 RGB bytes and ``[h, w, 3]``, subsampled so the longer side fits
    :data:`MAX_FRAME_SIDE` (a 720-pixel frame would cost 1.5 MB a frame otherwise)."""
    import numpy as np

    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] < 3:
        raise ValueError(f"rgb_array render returned shape {array.shape}; expected (h, w, 3)")
    stride = max(1, -(-max(array.shape[0], array.shape[1]) // MAX_FRAME_SIDE))
    small = np.ascontiguousarray(array[::stride, ::stride, :3], dtype=np.uint8)
    return small.tobytes(), [int(x) for x in small.shape]
