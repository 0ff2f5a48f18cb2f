"""Agent keyword arguments: JSON-plain values, built-in agents' keys and ranges, env fit.

Kwargs end up in a JSON worker file and in the digest, so they are reduced to plain JSON
values here once; built-in tabular agents are checked against the env's spaces so that a
mismatch is a validation error, not a worker crash.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Mapping
from typing import Any

from nbtrain.config.agentref import TABULAR_AGENTS

__all__ = ["TABULAR_AGENT_KWARGS", "check_agent_fits_env", "check_agent_kwargs", "plain_json"]

# The keyword arguments the built-in tabular agents accept (the agents package implements
# exactly these). ``bins``: int or one int per observation dim, for Box observations;
# ``bounds``: one [low, high] (or None: keep the Box's own) per dim, for infinite Box bounds;
# ``initial_q``: the table's starting value.
TABULAR_AGENT_KWARGS = frozenset(
    {"alpha", "gamma", "epsilon", "epsilon_min", "epsilon_decay", "initial_q", "bins", "bounds"}
)
_FLOAT_KWARGS = ("alpha", "gamma", "epsilon", "epsilon_min", "epsilon_decay", "initial_q")


def plain_json(value: object, where: str) -> Any:
    """``value`` as plain JSON types (tuples become lists, numpy scalars Python numbers)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{where} is {number!r}; only finite numbers are allowed")
        return number
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has key {key!r}; keys must be strings")
            out[key] = plain_json(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [plain_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return plain_json(tolist(), where)
    raise ValueError(
        f"{where} is {value!r} ({type(value).__name__}); use JSON values "
        "(None, bool, int, float, str, lists and dicts of them)"
    )


def check_agent_kwargs(agent: str, kwargs: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Keys and ranges for built-in agents; returns kwargs with float options as floats."""
    if agent not in TABULAR_AGENTS:
        if agent == "random" and kwargs:
            raise ValueError(
                f"{where}: the 'random' agent takes no agent_kwargs; got {sorted(kwargs)}"
            )
        return dict(kwargs)
    unknown = sorted(set(kwargs) - TABULAR_AGENT_KWARGS)
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, TABULAR_AGENT_KWARGS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"{where}: {agent} does not take {key!r}{hint} "
            f"(accepted: {', '.join(sorted(TABULAR_AGENT_KWARGS))})"
        )
    out = dict(kwargs)
    for key in _FLOAT_KWARGS:
        if key in out:
            value = out[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{where}: {key} must be a number; got {value!r}")
            out[key] = float(value)
    _check_range(out, "alpha", 0.0, 1.0, where, low_open=True)
    _check_range(out, "gamma", 0.0, 1.0, where)
    _check_range(out, "epsilon", 0.0, 1.0, where)
    _check_range(out, "epsilon_min", 0.0, 1.0, where)
    _check_range(out, "epsilon_decay", 0.0, 1.0, where, low_open=True)
    epsilon = out.get("epsilon", _agent_default("epsilon"))
    epsilon_min = out.get("epsilon_min", _agent_default("epsilon_min"))
    if epsilon_min > epsilon:
        given = "" if "epsilon_min" in out else ", its default"
        raise ValueError(
            f"{where}: epsilon_min ({epsilon_min}{given}) must not exceed epsilon ({epsilon}); "
            "pass a smaller epsilon_min as well"
        )
    if not math.isfinite(out.get("initial_q", 0.0)):
        raise ValueError(f"{where}: initial_q must be a finite number")
    if "bins" in out:
        _check_bins(out["bins"], where)
    if "bounds" in out:
        _check_bounds(out["bounds"], where)
    return out


def _agent_default(key: str) -> float:
    """The tabular agents' own default, so a partial override is compared with what runs."""
    import inspect

    from nbtrain.agents.tabular import TabularAgent

    default = inspect.signature(TabularAgent.__init__).parameters[key].default
    return float(default)


def _check_range(
    kwargs: Mapping[str, Any],
    key: str,
    low: float,
    high: float,
    where: str,
    *,
    low_open: bool = False,
) -> None:
    if key not in kwargs:
        return
    value = kwargs[key]
    ok = (low < value if low_open else low <= value) and value <= high
    if not ok:
        rule = f"{low} < {key} <= {high}" if low_open else f"{low} <= {key} <= {high}"
        raise ValueError(f"{where}: {key}={value!r} is out of range; need {rule}")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_bins(bins: object, where: str) -> None:
    if _is_count(bins):
        return
    if isinstance(bins, list) and bins and all(_is_count(b) for b in bins):
        return
    raise ValueError(
        f"{where}: bins={bins!r}; need an integer >= 1 or a non-empty list of them "
        "(one per observation dimension)"
    )


def _check_bounds(bounds: object, where: str) -> None:
    def pair_ok(pair: object) -> bool:
        return pair is None or (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in pair)
            and pair[0] < pair[1]
        )

    if not (isinstance(bounds, list) and bounds and all(pair_ok(p) for p in bounds)):
        raise ValueError(
            f"{where}: bounds={bounds!r}; need a list of [low, high] pairs with low < high "
            "(or None to keep a dimension's own bound), one per observation dimension"
        )


def check_agent_fits_env(
    agent: str,
    kwargs: Mapping[str, Any],
    env_id: str,
    observation_space: Any,
    action_space: Any,
    where: str,
) -> None:
    """Built-in tabular agents need Discrete actions and observations their table can index.

    The observation check is the agents' own discretizer, so validation and the worker agree.
    """
    if agent not in TABULAR_AGENTS:
        return
    from gymnasium import spaces

    from nbtrain.agents.discretize import MAX_TABLE_CELLS, make_discretizer

    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(
            f"{agent} needs a discrete action space; {env_id} has {action_space}. "
            "Use the 'random' agent or your own agent ('pkg.mod:factory' or a class)"
        )
    try:
        discretizer = make_discretizer(observation_space, kwargs.get("bins"), kwargs.get("bounds"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {agent} on {env_id}: {exc}") from None
    cells = discretizer.n_states * int(action_space.n)
    if cells > MAX_TABLE_CELLS:
        raise ValueError(
            f"{where}: {agent} on {env_id} would need a table of {discretizer.n_states} states x "
            f"{int(action_space.n)} actions (limit {MAX_TABLE_CELLS} cells); use fewer bins"
        )
