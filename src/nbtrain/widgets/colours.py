"""One colour per worker, everywhere: dashboard tabs and charts, and matplotlib plots.

The colour is derived from the worker id, never from a worker's position, so a dashboard
reopened after a kernel restart keeps every worker's colour. Within a run two workers never
share one while the palette lasts (:func:`worker_colours`: ``000000`` and ``000008``, or two
names that hash alike, would). The palette leaves out the green and red that mean
"completed" and "failed".
"""

from __future__ import annotations

import zlib

from nbtrain.ids import normalize_worker_id

PALETTE = (
    "#1f77b4",  # blue
    "#ff7f0e",  # orange
    "#9467bd",  # purple
    "#17becf",  # cyan
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#bcbd22",  # olive
    "#7f7f7f",  # grey
)


def worker_colour(worker_id: object) -> str:
    """The colour of ``worker_id`` (any form ``normalize_worker_id`` accepts).

    Numbered workers take the palette in order (``000001`` blue, ``000002`` orange, …);
    named ones a colour from a hash of the name.

    >>> worker_colour(1), worker_colour("w000002")
    ('#1f77b4', '#ff7f0e')
    """
    wid = normalize_worker_id(worker_id)
    if wid.isdigit():
        return PALETTE[(int(wid) - 1) % len(PALETTE)]
    return PALETTE[zlib.crc32(wid.encode()) % len(PALETTE)]


def worker_colours(worker_ids: list[str]) -> dict[str, str]:
    """The colours of a run's workers: each its :func:`worker_colour`, unless a worker
    before it (in id order) has that one; it then takes the next free one in the palette.
    Distinct for up to eight workers, and the same wherever the run's ids are known."""
    taken: set[str] = set()
    chosen: dict[str, str] = {}
    for wid in sorted(worker_ids):
        colour = worker_colour(wid)
        if colour in taken and len(taken) < len(PALETTE):
            start = PALETTE.index(colour)
            colour = next(c for c in PALETTE[start:] + PALETTE[:start] if c not in taken)
        taken.add(colour)
        chosen[wid] = colour
    return {wid: chosen[wid] for wid in worker_ids}
