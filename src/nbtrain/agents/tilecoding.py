"""Tile coding of a Box observation (Sutton & Barto, 2nd ed., §9.5.4 and §10.1).

Each of ``tilings`` grids covers the bounds with ``tiles`` equal tiles per dimension; tiling
``t`` is shifted by ``t·(1, 3, 5, …)/tilings`` of a tile width (the book's asymmetric
displacements, which avoid the diagonal artefacts of uniform offsets), so it needs one extra
tile per dimension to cover the far edge. An observation activates exactly one tile per
tiling: :meth:`TileCoder.indexes` returns those ``tilings`` row indexes into a weight table
of ``hash_size`` rows. When every tile of every tiling fits in ``hash_size`` rows the index
is the tile's own number (no collisions); otherwise tile numbers are hashed (a
multiplicative hash modulo ``hash_size``), as the book's ``tiles3`` does.
Observations outside the bounds are clipped into the edge tiles.

Computed with a handful of vectorized numpy operations per call, so a step costs a few
microseconds whatever the number of tilings.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from nbtrain.agents.discretize import check_finite

__all__ = ["MAX_TILINGS", "TileCoder", "make_tile_coder"]

MAX_TILINGS = 1024
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Knuth's multiplicative hash constant (2^64/φ)


class TileCoder:
    """``indexes(obs) -> int64 array of length tilings``, rows in ``range(hash_size)``."""

    def __init__(
        self,
        bounds: Sequence[tuple[float, float]],
        tiles: Sequence[int],
        tilings: int,
        hash_size: int,
    ) -> None:
        self.bounds = [(float(lo), float(hi)) for lo, hi in bounds]
        self.tiles = [int(n) for n in tiles]
        self.tilings = int(tilings)
        self.hash_size = int(hash_size)
        dims = len(self.tiles)
        self._low = np.array([lo for lo, _ in self.bounds])
        self._scale = np.array(
            [n / (hi - lo) for n, (lo, hi) in zip(self.tiles, self.bounds, strict=True)]
        )
        self._top = np.array(self.tiles, dtype=np.float64)
        # offsets[t, d] in tile widths: t·(2d+1)/tilings, wrapped into [0, 1)
        t = np.arange(self.tilings)[:, None]
        odd = 2 * np.arange(dims)[None, :] + 1
        self.offsets = ((t * odd) % self.tilings) / self.tilings
        sides = [n + 1 for n in self.tiles]  # one extra tile per dimension for the shift
        radix = np.ones(dims, dtype=np.int64)
        for d in range(dims - 2, -1, -1):
            radix[d] = radix[d + 1] * sides[d + 1]
        self._radix = radix
        per_tiling = math.prod(sides)
        self._base = np.arange(self.tilings, dtype=np.int64) * per_tiling
        self.n_tiles = per_tiling * self.tilings
        self.hashed = self.n_tiles > self.hash_size

    @property
    def config(self) -> dict[str, Any]:
        """What a saved policy stores so that the same coder can be rebuilt."""
        return {
            "tilings": self.tilings,
            "tiles": list(self.tiles),
            "bounds": [[lo, hi] for lo, hi in self.bounds],
            "hash_size": self.hash_size,
        }

    def tile_numbers(self, obs: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
        """The active tile of each tiling, numbered ``0 … n_tiles-1`` before any hashing."""
        x = np.asarray(obs, dtype=np.float64).ravel()
        scaled = np.clip((x - self._low) * self._scale, 0.0, self._top)
        coords = (scaled + self.offsets).astype(np.int64)  # floor: all values are >= 0
        out: np.ndarray[Any, np.dtype[np.int64]] = coords @ self._radix + self._base
        return out

    def indexes(self, obs: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
        """The weight rows active for ``obs`` (one per tiling)."""
        numbers_ = self.tile_numbers(obs)
        if not self.hashed:
            return numbers_
        mixed = (numbers_.astype(np.uint64) * _GOLDEN) >> np.uint64(20)
        out: np.ndarray[Any, np.dtype[np.int64]] = (mixed % np.uint64(self.hash_size)).astype(
            np.int64
        )
        return out


def _count(name: str, value: object, low: int, high: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not (low <= int(value) <= high)
    ):
        raise ValueError(f"{name}={value!r} must be an integer in [{low}, {high}]")
    return int(value)


def make_tile_coder(
    space: spaces.Space[Any],
    *,
    tilings: int,
    tiles: int | Sequence[int],
    bounds: Sequence[Sequence[float] | None] | None,
    hash_size: int,
    max_rows: int,
) -> TileCoder:
    """Check the arguments against a Box ``space`` and build its coder; ``ValueError`` or
    ``TypeError`` name what is wrong and how to fix it."""
    from nbtrain.agents.discretize import _check_pair

    if not isinstance(space, spaces.Box):
        raise TypeError(
            f"tile_sarsa needs a Box observation space; got {space} (use q_learning, sarsa "
            "or expected_sarsa for discrete observations)"
        )
    dims = math.prod(space.shape)
    n_tilings = _count("tilings", tilings, 1, MAX_TILINGS)
    rows = _count("hash_size", hash_size, 1, max_rows)
    tile_list = [tiles] * dims if isinstance(tiles, numbers.Integral) else tiles
    if (
        isinstance(tile_list, str | bytes)
        or not isinstance(tile_list, Sequence)
        or len(tile_list) != dims
    ):
        raise ValueError(
            f"tiles={tiles!r} must be an int or a list of {dims} ints (one per observation "
            "dimension)"
        )
    counts = [_count("tiles", n, 1, 1_000_000) for n in tile_list]
    lows = space.low.ravel().tolist()
    highs = space.high.ravel().tolist()
    if bounds is not None:
        if isinstance(bounds, str | bytes) or len(bounds) != dims:
            raise ValueError(
                f"bounds={bounds!r} must be a list of {dims} [low, high] pairs (or None to "
                "keep the space's bound), one per observation dimension"
            )
        for d, pair in enumerate(bounds):
            if pair is not None:
                lows[d], highs[d] = _check_pair(pair, d)
    check_finite(lows, highs, space)
    pairs: list[tuple[float, float]] = []
    for d, (low, high) in enumerate(zip(lows, highs, strict=True)):
        if not low < high:
            raise ValueError(f"observation dimension {d}: low {low} must be below high {high}")
        pairs.append((float(low), float(high)))
    return TileCoder(pairs, counts, n_tilings, rows)
