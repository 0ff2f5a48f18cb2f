"""Agent keyword arguments: JSON-plain values, built-in agents' keys and ranges, env fit.

Kwargs end up in a JSON worker file and in the digest, so they are reduced to plain JSON
values here once; built-in tabular agents are checked against the env's spaces so that a
mismatch is a validation error, not a worker crash.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from nbtrain.config.agentref import TABULAR_AGENTS

__all__ = [  # and TABULAR_AGENT_KWARGS, computed on first use (module __getattr__)
    "check_agent_fits_env",
    "check_agent_kwargs",
    "check_factory_call",
    "plain_json",
]

# Built-in agents whose keyword arguments are checked here; their names, defaults and types
# come from the agents' own signatures (``nbtrain.agents.params``), the single source.
CHECKED_AGENTS = (*TABULAR_AGENTS, "tile_sarsa")
_UNIT_RANGES = {  # key: (low, high, low_open)
    "alpha": (0.0, 1.0, True),
    "gamma": (0.0, 1.0, False),
    "epsilon": (0.0, 1.0, False),
    "epsilon_min": (0.0, 1.0, False),
    "epsilon_decay": (0.0, 1.0, True),
}


@functools.cache
def builtin_params(agent: str) -> dict[str, Any]:
    """``{name: default}`` of a built-in agent's hyperparameters, from its signature."""
    from nbtrain.agents.params import agent_params

    return {name: p.default for name, p in agent_params(agent).items()}


def __getattr__(name: str) -> Any:
    if name == "TABULAR_AGENT_KWARGS":  # computed on first use: it imports the agents
        return frozenset(builtin_params("q_learning"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    if agent not in CHECKED_AGENTS:
        if agent == "random" and kwargs:
            raise ValueError(
                f"{where}: the 'random' agent takes no agent_kwargs; got {sorted(kwargs)}"
            )
        return dict(kwargs)
    defaults = builtin_params(agent)
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(defaults), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"{where}: {agent} does not take {key!r}{hint} "
            f"(accepted: {', '.join(sorted(defaults))})"
        )
    out = dict(kwargs)
    for key, default in defaults.items():
        if key in out and isinstance(default, float):
            value = out[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{where}: {key} must be a number; got {value!r}")
            out[key] = float(value)
    for key, (low, high, low_open) in _UNIT_RANGES.items():
        _check_range(out, key, low, high, where, low_open=low_open)
    epsilon = out.get("epsilon", defaults["epsilon"])
    epsilon_min = out.get("epsilon_min", defaults["epsilon_min"])
    if epsilon_min > epsilon:
        floor = "" if "epsilon_min" in out else ", its default"
        start = "" if "epsilon" in out else ", its default"
        raise ValueError(
            f"{where}: epsilon_min ({epsilon_min}{floor}) must not exceed epsilon "
            f"({epsilon}{start}); pass a smaller epsilon_min or a larger epsilon as well"
        )
    if not math.isfinite(out.get("initial_q", 0.0)):
        raise ValueError(f"{where}: initial_q must be a finite number")
    if "bins" in out:
        _check_bins(out["bins"], where, "bins")
    if "tiles" in out:
        _check_bins(out["tiles"], where, "tiles")
    for key in ("tilings", "hash_size"):
        if key in out and not _is_count(out[key]):
            raise ValueError(f"{where}: {key}={out[key]!r}; need an integer >= 1")
    if "bounds" in out:
        _check_bounds(out["bounds"], where)
    return out


def check_factory_call(
    factory: Callable[..., Any], kwargs: Mapping[str, Any], where: str, label: str
) -> None:
    """The worker will call ``factory(observation_space, action_space, seed=…, **kwargs)``:
    check that call against the factory's signature without making the call. A factory
    whose signature cannot be read (some C callables) is not checked."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    if "seed" in kwargs:
        raise ValueError(
            f"{where}: must not contain 'seed'; the worker passes its own seed (set "
            "WorkerSpec(seed=...) or the run's seed instead)"
        )
    try:
        signature.bind(None, None, seed=0, **kwargs)
    except TypeError as exc:
        params = [
            p.name
            for p in list(signature.parameters.values())[2:]
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            and p.name != "seed"
        ]
        unknown = sorted(set(kwargs) - set(params))
        close = difflib.get_close_matches(unknown[0], params, n=1) if unknown else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"{where}: agent {label!r} cannot be called as "
            f"factory(observation_space, action_space, seed=..., **agent_kwargs): {exc}{hint} "
            f"(its signature: {label.split(':')[-1]}{signature})"
        ) from None


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


def _check_bins(bins: object, where: str, key: str) -> None:
    if _is_count(bins):
        return
    if isinstance(bins, list) and bins and all(_is_count(b) for b in bins):
        return
    raise ValueError(
        f"{where}: {key}={bins!r}; need an integer >= 1 or a non-empty list of them "
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
    """Built-in agents need Discrete actions and observations their table or tile coding can
    encode.

    The observation check is the agents' own discretizer or tile coder, so validation and the
    worker agree.
    """
    if agent not in CHECKED_AGENTS:
        return
    from gymnasium import spaces

    from nbtrain.agents.discretize import MAX_TABLE_CELLS, make_discretizer

    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(
            f"{agent} needs a discrete action space; {env_id} has {action_space}. "
            "Use the 'random' agent or your own agent ('pkg.mod:factory' or a class)"
        )
    if agent == "tile_sarsa":
        _check_tiles_fit(kwargs, env_id, observation_space, int(action_space.n), where)
        return
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


def _check_tiles_fit(
    kwargs: Mapping[str, Any], env_id: str, observation_space: Any, n_actions: int, where: str
) -> None:
    from nbtrain.agents.discretize import MAX_TABLE_CELLS
    from nbtrain.agents.tilecoding import make_tile_coder

    defaults = builtin_params("tile_sarsa")
    try:
        make_tile_coder(
            observation_space,
            tilings=kwargs.get("tilings", defaults["tilings"]),
            tiles=kwargs.get("tiles", defaults["tiles"]),
            bounds=kwargs.get("bounds", defaults["bounds"]),
            hash_size=kwargs.get("hash_size", defaults["hash_size"]),
            max_rows=max(1, MAX_TABLE_CELLS // n_actions),
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: tile_sarsa on {env_id}: {exc}") from None
