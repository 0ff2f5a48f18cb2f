"""The one place the built-in agents' hyperparameters and defaults are stated.

A built-in agent's keyword-only constructor parameters *are* its hyperparameters: their
defaults come from the signature and their help text from the class's ``PARAM_HELP``. The
class docstring's table (:func:`document_params`), the form's placeholders and help
(``nbtrain.widgets.form_spec``), the docs and config validation (``nbtrain.config.agentkw``)
all read them from here, so they cannot disagree. The agents check a numeric value against
its range with :func:`check_number`, so their messages say the same.
"""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "AgentParam",
    "agent_params",
    "check_number",
    "class_params",
    "document_params",
    "params_table",
]

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class AgentParam:
    """One hyperparameter: its name, default and a one-line help."""

    name: str
    default: Any
    help: str


def class_params(cls: type) -> dict[str, AgentParam]:
    """The keyword-only parameters of ``cls(observation_space, action_space, seed, *, ...)``."""
    helps: dict[str, str] = getattr(cls, "PARAM_HELP", {})
    out: dict[str, AgentParam] = {}
    for param in inspect.signature(cls).parameters.values():
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            out[param.name] = AgentParam(param.name, param.default, helps.get(param.name, ""))
    return out


def agent_params(name: str) -> dict[str, AgentParam]:
    """The hyperparameters of the built-in agent ``name`` (``"q_learning"``, ``"tile_sarsa"``…)."""
    from nbtrain.agents.factory import BUILTIN_AGENTS, resolve_import_path

    target = BUILTIN_AGENTS.get(name)
    if target is None:
        raise ValueError(
            f"unknown built-in agent {name!r}; built-in agents: {list(BUILTIN_AGENTS)}"
        )
    cls = resolve_import_path(target, label=name)
    assert isinstance(cls, type)  # every built-in agent is a class
    return class_params(cls)


def _cell(value: Any) -> str:
    return f"``{value!r}``"


def params_table(cls: type) -> str:
    """An reST table of ``cls``'s hyperparameters: name, default, help."""
    rows = [(f"``{p.name}``", _cell(p.default), p.help) for p in class_params(cls).values()]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    rule = f"{'=' * widths[0]}  {'=' * widths[1]}  {'=' * 40}"
    lines = [rule]
    lines += [f"{a.ljust(widths[0])}  {b.ljust(widths[1])}  {c}" for a, b, c in rows]
    lines.append(rule)
    return "\n".join(lines)


def document_params(cls: T) -> T:
    """Class decorator: append the hyperparameter table (from the signature) to the docstring."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    cls.__doc__ = (
        f"{doc}\n\nHyperparameters (defaults from the signature):\n\n{params_table(cls)}\n"
    )
    return cls


def check_number(
    name: str, value: object, low: float, high: float, *, open_low: bool = False
) -> float:
    """``value`` as a float if it is a real number in ``[low, high]`` (``(low, high]`` with
    ``open_low``); else a ValueError naming the hyperparameter ``name`` and its range."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    x = float(value) if ok else math.nan  # type: ignore[arg-type]
    if not ok or math.isnan(x) or x > high or x < low or (open_low and x == low):
        left = "(" if open_low else "["
        raise ValueError(
            f"{name}={value!r} is not allowed; it must be a number in {left}{low}, {high}]"
        )
    return x
