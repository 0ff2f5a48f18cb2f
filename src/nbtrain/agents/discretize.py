"""Map an observation to one table row index, in plain Python for speed.

Tabular agents need a finite state set. Discrete-like spaces (``Discrete``, ``MultiDiscrete``,
``MultiBinary``, a ``Tuple`` of ``Discrete`` as in Blackjack) are enumerated exactly; a ``Box``
is cut into ``bins`` equal-width cells per dimension between bounds (observations outside the
bounds are clipped into the edge cells). Encoding runs once or twice per step, so it avoids
numpy scalar arithmetic: arrays become Python lists with ``tolist()`` and the rest is ints
and floats.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from gymnasium import spaces

# A Q-table is a list of Python lists; past this many cells it would not fit comfortably in
# memory (each cell is a pointer, later a float object), and a tabular agent would not learn.
MAX_TABLE_CELLS = 10_000_000


class Discretizer:
    """``encode(obs) -> int`` in ``range(n_states)``; ``config`` (saved with a policy) says how."""

    n_states: int
    config: dict[str, Any]

    def encode(self, obs: Any) -> int:
        raise NotImplementedError


class DiscreteEncoder(Discretizer):
    def __init__(self, space: spaces.Discrete) -> None:
        self.n_states = int(space.n)
        self._start = int(space.start)
        self.config = {"kind": "discrete", "n": self.n_states, "start": self._start}

    def encode(self, obs: Any) -> int:
        return int(obs) - self._start

    @property
    def fast_encode(self) -> Any:
        """``encode``, or for spaces starting at 0 the builtin ``int`` (no Python frame)."""
        return int if self._start == 0 else self.encode


class RadixEncoder(Discretizer):
    """Several small integer components combined as digits of a mixed-radix number."""

    def __init__(self, kind: str, sizes: Sequence[int], starts: Sequence[int]) -> None:
        self._sizes = [int(n) for n in sizes]
        self._starts = [int(s) for s in starts]
        self.n_states = math.prod(self._sizes)
        self.config = {"kind": kind, "sizes": self._sizes, "starts": self._starts}

    def encode(self, obs: Any) -> int:
        values = obs.tolist() if hasattr(obs, "tolist") else obs
        if not isinstance(values, list | tuple):  # a 0-d array
            values = [values]
        state = 0
        for value, size, start in zip(values, self._sizes, self._starts, strict=True):
            state = state * size + (int(value) - start)
        return state


class BoxDiscretizer(Discretizer):
    """Equal-width bins per flattened dimension, clipped to ``[low, high]``."""

    def __init__(self, bins: list[int], bounds: list[tuple[float, float]]) -> None:
        self._bins = bins
        self._lows = [low for low, _ in bounds]
        self._scales = [b / (high - low) for b, (low, high) in zip(bins, bounds, strict=True)]
        self._last = [b - 1 for b in bins]
        self.n_states = math.prod(bins)
        self.config = {"kind": "box", "bins": bins, "bounds": [[lo, hi] for lo, hi in bounds]}

    def encode(self, obs: Any) -> int:
        values = obs.ravel().tolist() if hasattr(obs, "ravel") else list(obs)
        state = 0
        for x, low, scale, last, b in zip(
            values, self._lows, self._scales, self._last, self._bins, strict=True
        ):
            try:
                i = int((x - low) * scale)
            except (OverflowError, ValueError):  # ±inf: an edge cell, as bigger values are
                i = _edge(x, low, values)
            if i < 0:
                i = 0
            elif i > last:
                i = last
            state = state * b + i
        return state


def check_finite(
    lows: list[float],
    highs: list[float],
    space: object,
    ignore: set[int] | frozenset[int] = frozenset(),
) -> None:
    """Raise naming every dimension (not in ``ignore``) with an infinite bound, at once (one
    per attempt had a CartPole user fix dimension 1, then meet dimension 3)."""
    infinite = [
        d
        for d, (low, high) in enumerate(zip(lows, highs, strict=True))
        if d not in ignore and not (math.isfinite(low) and math.isfinite(high))
    ]
    if infinite:
        shown = ", ".join(f"{d} [{lows[d]}, {highs[d]}]" for d in infinite)
        raise ValueError(
            f"observation dimension(s) {shown} of {space} have infinite bounds; pass "
            f"bounds=[[low, high], ...] with a finite pair for dimension(s) {infinite} "
            "(None keeps a dimension's own bound)"
        )


def _edge(x: float, low: float, values: list[Any]) -> int:
    """The cell of an infinite value (below every cell, or above: clipped to the edge);
    NaN has none."""
    if x != x:
        dims = [d for d, v in enumerate(values) if v != v]
        raise ValueError(
            f"the observation {values!r} is NaN in dimension(s) {dims}; a tabular agent "
            "cannot place it in a cell (the environment returned it)"
        )
    return -1 if x < low else 1 << 62


def make_discretizer(
    space: spaces.Space[Any],
    bins: int | Sequence[int] | None = None,
    bounds: Sequence[Sequence[float] | None] | None = None,
) -> Discretizer:
    """The discretizer for an observation space; ``bins``/``bounds`` are for ``Box`` only."""
    if not isinstance(space, spaces.Box):
        for name, value in (("bins", bins), ("bounds", bounds)):
            if value is not None:
                raise ValueError(
                    f"{name}={value!r} only applies to Box observation spaces; "
                    f"this observation space is {space}"
                )
    if isinstance(space, spaces.Discrete):
        return DiscreteEncoder(space)
    if isinstance(space, spaces.MultiDiscrete):
        return RadixEncoder(
            "multi_discrete", space.nvec.ravel().tolist(), space.start.ravel().tolist()
        )
    if isinstance(space, spaces.MultiBinary):
        size = math.prod(space.shape)
        return RadixEncoder("multi_binary", [2] * size, [0] * size)
    if isinstance(space, spaces.Tuple) and all(
        isinstance(sub, spaces.Discrete) for sub in space.spaces
    ):
        subs: list[spaces.Discrete] = list(space.spaces)  # type: ignore[arg-type]
        return RadixEncoder("tuple", [int(s.n) for s in subs], [int(s.start) for s in subs])
    if isinstance(space, spaces.Box):
        return _box_discretizer(space, bins, bounds)
    raise TypeError(
        f"tabular agents cannot use the observation space {space}; supported: Discrete, "
        "MultiDiscrete, MultiBinary, Tuple of Discrete, and Box with bins=..."
    )


def _box_discretizer(
    space: spaces.Box,
    bins: int | Sequence[int] | None,
    bounds: Sequence[Sequence[float] | None] | None,
) -> BoxDiscretizer:
    dims = math.prod(space.shape)
    if bins is None:
        raise ValueError(
            f"the observation space {space} is continuous; pass bins=<int or one int per "
            f"dimension ({dims})> in agent_kwargs (and bounds=[[low, high], ...] for "
            "dimensions with infinite bounds)"
        )
    bin_list = _check_bins(bins, dims)
    lows = space.low.ravel().tolist()
    highs = space.high.ravel().tolist()
    if bounds is not None:
        if isinstance(bounds, str | bytes) or len(bounds) != dims:
            raise ValueError(
                f"bounds={bounds!r} must be a list of {dims} [low, high] pairs "
                "(or None to keep the space's bound), one per observation dimension"
            )
        for d, pair in enumerate(bounds):
            if pair is not None:
                lows[d], highs[d] = _check_pair(pair, d)
    check_finite(lows, highs, space, ignore={d for d, b in enumerate(bin_list) if b == 1})
    pairs: list[tuple[float, float]] = []
    for d, (low, high) in enumerate(zip(lows, highs, strict=True)):
        if bin_list[d] == 1:  # one cell: the dimension is ignored, its bounds do not matter
            low, high = (low, high) if math.isfinite(low) and math.isfinite(high) else (0.0, 1.0)
        if not low < high:
            raise ValueError(f"observation dimension {d}: low {low} must be below high {high}")
        pairs.append((float(low), float(high)))
    return BoxDiscretizer(bin_list, pairs)


def _check_bins(bins: int | Sequence[int], dims: int) -> list[int]:
    items = [bins] * dims if isinstance(bins, numbers.Integral) else bins
    if isinstance(items, str | bytes) or not isinstance(items, Sequence) or len(items) != dims:
        raise ValueError(
            f"bins={bins!r} must be an int or a list of {dims} ints (one per observation dimension)"
        )
    out: list[int] = []
    for b in items:
        if isinstance(b, bool) or not isinstance(b, numbers.Integral) or b < 1:
            raise ValueError(f"bins={bins!r}: every bin count must be an int >= 1, got {b!r}")
        out.append(int(b))
    return out


def _check_pair(pair: Sequence[float], d: int) -> tuple[float, float]:
    ok = (
        not isinstance(pair, str | bytes)
        and isinstance(pair, Sequence)
        and len(pair) == 2
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in pair)
    )
    if not ok or not all(math.isfinite(v) for v in pair) or not pair[0] < pair[1]:
        raise ValueError(
            f"bounds for observation dimension {d} must be [low, high] with finite "
            f"low < high, got {pair!r}"
        )
    return float(pair[0]), float(pair[1])
