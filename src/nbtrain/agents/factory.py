"""Turn an ``AgentRef`` from the worker config into a live agent.

Three kinds: ``builtin`` (a name in :data:`BUILTIN_AGENTS`, imported only when used),
``import`` (``"pkg.mod:factory"``, where ``factory`` may be a dotted qualname such as
``Outer.make``) and ``pickle`` (a notebook-defined class or callable, cloudpickled by the
kernel; plain :func:`pickle.loads` reads it because cloudpickle's reconstructors are
importable functions of the ``cloudpickle`` package). Every failure names the agent.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import pickle
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from nbtrain.agents.protocol import Agent, missing_methods

if TYPE_CHECKING:
    from gymnasium import spaces

    from nbtrain.worker.config_file import AgentRef

# name -> "module:attribute" of the factory (imported lazily)
BUILTIN_AGENTS: Mapping[str, str] = {
    "q_learning": "nbtrain.agents.tabular:QLearningAgent",
    "sarsa": "nbtrain.agents.tabular:SarsaAgent",
    "expected_sarsa": "nbtrain.agents.tabular:ExpectedSarsaAgent",
    "tile_sarsa": "nbtrain.agents.tile_sarsa:TileSarsaAgent",
    "random": "nbtrain.agents.random_agent:RandomAgent",
}


def agent_label(ref: AgentRef) -> str:
    """A short human name: ``q_learning``, ``pkg.mod:factory`` or ``MyAgent (notebook)``."""
    if ref.kind == "pickle":
        return f"{ref.name} (notebook)"
    return ref.name


def resolve_import_path(path: str, *, label: str | None = None) -> Callable[..., Any]:
    """Import ``"pkg.mod:qual.name"`` and return the attribute (not called)."""
    label = label or path
    module_name, sep, qualname = path.partition(":")
    if not sep or not module_name or not qualname:
        raise ValueError(
            f"agent {label!r}: import path {path!r} must look like 'pkg.module:factory'"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"agent {label!r}: cannot import module {module_name!r}: {exc}", name=module_name
        ) from exc
    done: list[str] = []
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            owner = f"{module_name}:{'.'.join(done)}" if done else f"module {module_name!r}"
            raise ImportError(
                f"agent {label!r}: {owner} has no attribute {part!r}", name=module_name
            ) from exc
        done.append(part)
    return obj  # type: ignore[no-any-return]


def _unpickle(ref: AgentRef, label: str) -> Any:
    if not ref.payload:
        raise ValueError(f"agent {label!r}: kind 'pickle' needs a payload, got none")
    try:
        raw = base64.b64decode(ref.payload.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"agent {label!r}: payload is not valid base64: {exc}") from exc
    try:
        return pickle.loads(raw)
    except ImportError as exc:
        raise ImportError(
            f"agent {label!r}: unpickling needs a module this worker cannot import: {exc}"
        ) from exc
    except Exception as exc:
        raise ValueError(
            f"agent {label!r}: payload cannot be unpickled ({type(exc).__name__}: {exc})"
        ) from exc


def resolve_factory(ref: AgentRef) -> Callable[..., Any]:
    """The factory an ``AgentRef`` points to (imported or unpickled, not called)."""
    label = agent_label(ref)
    if ref.kind == "builtin":
        target = BUILTIN_AGENTS.get(ref.name)
        if target is None:
            raise ValueError(
                f"unknown built-in agent {ref.name!r}; built-in agents: "
                f"{', '.join(BUILTIN_AGENTS)} (or an import path 'pkg.mod:factory')"
            )
        factory = resolve_import_path(target, label=label)
    elif ref.kind == "import":
        factory = resolve_import_path(ref.name, label=label)
    elif ref.kind == "pickle":
        factory = _unpickle(ref, label)
    else:
        raise ValueError(
            f"agent {label!r}: unknown agent kind {ref.kind!r}; allowed: builtin, import, pickle"
        )
    if not callable(factory):
        raise TypeError(
            f"agent {label!r} resolves to {factory!r}, which is not callable; it must be a "
            "class or function taking (observation_space, action_space, seed=..., **kwargs)"
        )
    return factory


def make_agent(
    ref: AgentRef,
    observation_space: spaces.Space[Any],
    action_space: spaces.Space[Any],
    seed: int,
    agent_kwargs: Mapping[str, Any] | None = None,
) -> Agent:
    """Resolve ``ref`` and call ``factory(observation_space, action_space, seed=seed, **kwargs)``.

    A factory's ``TypeError`` (say, an unexpected keyword) stays a ``TypeError`` and any other
    exception becomes a ``ValueError``; both name the agent and chain the original. The
    result must have callable ``act`` and ``learn`` (else ``TypeError``).
    """
    label = agent_label(ref)
    kwargs = dict(agent_kwargs or {})
    if "seed" in kwargs:
        raise ValueError(
            f"agent {label!r}: agent_kwargs must not contain 'seed'; the worker passes its own "
            "seed (set WorkerSpec(seed=...) or the run's seed instead)"
        )
    factory = resolve_factory(ref)
    try:
        agent = factory(observation_space, action_space, seed=seed, **kwargs)
    except TypeError as exc:
        raise TypeError(f"agent {label!r} could not be created: {exc}") from exc
    except Exception as exc:
        raise ValueError(
            f"agent {label!r} could not be created: {type(exc).__name__}: {exc}"
        ) from exc
    missing = missing_methods(agent)
    if missing:
        raise TypeError(
            f"agent {label!r} returned {type(agent).__name__} object without callable "
            f"{' and '.join(missing)}; an agent needs act(obs, explore=True) and "
            "learn(obs, action, reward, next_obs, terminated, truncated)"
        )
    return agent  # type: ignore[no-any-return]
