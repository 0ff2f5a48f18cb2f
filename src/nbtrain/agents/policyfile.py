"""Reading and writing the built-in agents' policy files (JSON), and what a file says about
the agent that can play it.

A policy is self-contained: besides the learned values it holds how observations are
encoded (bins and bounds, or the tile coding), so evaluating it needs only its path.
:func:`policy_agent` tells the kernel which built-in agent and which structural keyword
arguments rebuild the agent that saved it, without making that agent.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import msgspec

from nbtrain.agents.atomic import write_atomic
from nbtrain.agents.params import check_number

__all__ = [
    "TABULAR_ALGORITHMS",
    "TABULAR_FORMAT",
    "TILE_FORMAT",
    "VERSION",
    "PolicyFileError",
    "policy_agent",
    "policy_json",
    "read_policy",
    "resume_point",
    "tabular_algorithm",
    "write_policy",
]

TABULAR_FORMAT = "nbtrain.tabular"
TILE_FORMAT = "nbtrain.tile_sarsa"
VERSION = 1
TABULAR_ALGORITHMS = ("q_learning", "sarsa", "expected_sarsa")


class PolicyFileError(ValueError):
    """A policy file that cannot be read, or was not written by a built-in agent."""


_encoder = msgspec.json.Encoder()


def policy_json(data: dict[str, Any]) -> bytes:
    """A policy file's bytes: compact JSON (the format and episode first, see checkpoint).

    msgspec writes it about ten times faster than ``json.dumps`` (FrozenLake's Q-table: 2
    against 28 us, and a worker snapshots its agent every 100 episodes). It writes NaN and
    infinities as ``null``, though, so a policy holding one (a diverged agent) is written by
    ``json.dumps`` as before: ``NaN`` and ``Infinity`` read back as the same values.
    """
    out = _encoder.encode(data)
    if b"null" in out and _has_non_finite(data):
        return json.dumps(data, separators=(",", ":")).encode("utf-8")
    return out


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list | tuple):
        return False
    return any(map(_has_non_finite, value))


def write_policy(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """``data`` as compact JSON, written atomically with mode 0600."""
    write_atomic(path, policy_json(data))


def read_policy(path: str | os.PathLike[str], fmt: str | None = None) -> dict[str, Any]:
    """The JSON of a policy file, checked for an nbtrain format (``fmt`` if given) and version."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")  # OSError (e.g. missing) propagates
    except UnicodeDecodeError as exc:
        raise PolicyFileError(f"policy file {name!r} is not text: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyFileError(f"policy file {name!r} is not valid JSON: {exc}") from exc
    known = (TABULAR_FORMAT, TILE_FORMAT) if fmt is None else (fmt,)
    if not isinstance(data, dict) or data.get("format") not in known:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        kinds = " or ".join(k.removeprefix("nbtrain.") for k in known)
        raise PolicyFileError(
            f"policy file {name!r} is not an nbtrain {kinds} policy (expected format "
            f"{' or '.join(map(repr, known))}, found {found!r})"
        )
    if data.get("version") != VERSION:
        raise PolicyFileError(
            f"policy file {name!r} has version {data.get('version')!r}; "
            f"this nbtrain reads version {VERSION}"
        )
    return data


def policy_agent(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """``(built-in agent name, structural kwargs)`` that rebuild the agent that saved ``path``.

    Structural kwargs are those that shape the table or weights (``bins``/``bounds`` for a
    Box observation; ``tilings``, ``tiles``, ``bounds``, ``hash_size`` for tile coding);
    learning hyperparameters are not among them, they stay the config's.
    """
    data = read_policy(path)
    if data["format"] == TILE_FORMAT:
        coding = data.get("tile_coding")
        if not isinstance(coding, dict):
            raise PolicyFileError(f"policy file {str(path)!r} has no tile_coding section")
        keys = ("tilings", "tiles", "bounds", "hash_size")
        return "tile_sarsa", {k: coding[k] for k in keys if k in coding}
    algorithm = tabular_algorithm(data, path)
    observation = data.get("observation")
    kwargs: dict[str, Any] = {}
    if isinstance(observation, dict) and observation.get("kind") == "box":
        kwargs = {"bins": observation.get("bins"), "bounds": observation.get("bounds")}
    return algorithm, kwargs


def tabular_algorithm(data: dict[str, Any], path: str | os.PathLike[str]) -> str:
    """The algorithm a tabular policy file names, if it is one of the built-in ones."""
    algorithm = data.get("algorithm")
    if algorithm not in TABULAR_ALGORITHMS:
        raise PolicyFileError(
            f"policy file {str(path)!r} holds algorithm {algorithm!r}; "
            f"allowed: {', '.join(TABULAR_ALGORITHMS)}"
        )
    return str(algorithm)


def resume_point(data: dict[str, Any], epsilon: float) -> tuple[float, int | None]:
    """``(ε, episodes finished)`` recorded in a policy file, for ``restore``: ε checked
    (``epsilon`` where the file has none), the episode count None where it has none."""
    eps = check_number("epsilon", data.get("epsilon", epsilon), 0.0, 1.0)
    episode = data.get("episode")
    return eps, episode if isinstance(episode, int) and not isinstance(episode, bool) else None
