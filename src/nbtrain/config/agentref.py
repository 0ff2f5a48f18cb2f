"""Turn the ``agent`` field into an :class:`AgentRef` the worker can load.

The kernel never calls an agent factory: import paths are only resolved (module imported,
attribute found), and notebook-defined classes travel by value. A pickled agent enters the
digest by its qualified name and source hash, so the digest is stable across kernel sessions
even though pickle bytes are not.
"""

from __future__ import annotations

import base64
import difflib
import functools
import hashlib
import importlib
import inspect
import os
import sys
import sysconfig
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from nbtrain.config.fresh import ask_fresh_interpreter
from nbtrain.errors import ConfigError
from nbtrain.worker.config_file import AgentRef

__all__ = [
    "BUILTIN_AGENTS",
    "TABULAR_AGENTS",
    "adopt_stored_agent",
    "agent_display_name",
    "agent_factory",
    "resolve_agent",
]

TABULAR_AGENTS = ("q_learning", "sarsa", "expected_sarsa")
BUILTIN_AGENTS = (*TABULAR_AGENTS, "tile_sarsa", "random")


def agent_display_name(agent: object) -> str:
    """The agent part of the default run name: the string itself, or a callable's qualname."""
    if isinstance(agent, str):
        return agent
    qualname = getattr(agent, "__qualname__", None)
    return qualname if isinstance(qualname, str) else type(agent).__qualname__


# Agents unpickled from a run's own database row (a restart or an evaluation, maybe in a new
# kernel), with the name and source hash that row was stored under. Their source is not in
# this process (inspect.getsource fails, or finds another class of the same name in
# __main__), so a hash taken here would not be the run's: the stored one is their identity.
# Keyed by identity (an equal object is not the same agent); the pickle sent to workers is
# always made afresh, from the object as it is.
_FROM_RUN_ROWS: dict[int, tuple[weakref.ref[Any], str, str]] = {}


def adopt_stored_agent(agent: Any, name: str, source_sha256: str) -> None:
    """Record that ``agent`` was unpickled from a run's row stored under these."""
    key = id(agent)
    try:
        alive = weakref.ref(agent, lambda _: _FROM_RUN_ROWS.pop(key, None))
    except TypeError:  # not weakly referenceable: resolved as usual
        return
    _FROM_RUN_ROWS[key] = (alive, name, source_sha256)


def _stored_identity(agent: Any) -> tuple[str, str] | None:
    entry = _FROM_RUN_ROWS.get(id(agent))
    if entry is None or entry[0]() is not agent:
        return None
    return entry[1], entry[2]


def resolve_agent(agent: str | Callable[..., Any]) -> AgentRef:
    """Check ``agent`` and describe how a worker gets it; raises ``ValueError`` with the fix."""
    if isinstance(agent, str):
        return _resolve_name(agent)
    if not callable(agent):
        raise ValueError(
            f"agent must be one of {list(BUILTIN_AGENTS)}, an import path 'pkg.mod:factory', "
            f"or a class/callable; got {agent!r}"
        )
    path = _import_path_of(agent)
    if path is not None:
        return AgentRef(kind="import", name=path)
    return _pickle_ref(agent)


def _resolve_name(name: str) -> AgentRef:
    if name in BUILTIN_AGENTS:
        return AgentRef(kind="builtin", name=name)
    if ":" not in name:
        close = difflib.get_close_matches(name, BUILTIN_AGENTS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise ValueError(
            f"unknown agent {name!r}{hint} Use one of {list(BUILTIN_AGENTS)}, an import path "
            "'pkg.mod:factory', or pass a class/callable"
        )
    _lookup_import_path(name)
    problem = _worker_cannot_import(name)
    if problem is not None:
        module = name.partition(":")[0]
        raise ValueError(
            f"agent import path {name!r} imports in this kernel only ({problem}); workers are "
            f"separate processes started in {os.getcwd()!r} with this kernel's PYTHONPATH. "
            f"Make {module!r} importable there (install it, put it in that folder or on "
            "PYTHONPATH; sys.path changes in the notebook do not reach workers), or pass the "
            "class itself"
        )
    return AgentRef(kind="import", name=name)


# Run as ``python -c _PROBE "pkg.mod:factory"`` the way a worker would import the factory.
_PROBE = """
import importlib, sys, warnings
warnings.simplefilter("ignore")
module, _, attr = sys.argv[1].partition(":")
try:
    target = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(4)
"""


def _worker_cannot_import(path: str) -> str | None:
    """None if a worker can import ``path``, else what fails. Modules that the kernel
    imported from the standard library or site-packages are found by every worker (the
    same interpreter): only other modules cost a fresh interpreter's look, once."""
    module = sys.modules.get(path.partition(":")[0])
    origin = getattr(module, "__file__", None)
    if isinstance(origin, str) and _in_installed_places(origin):
        return None
    return ask_fresh_interpreter(_PROBE, path, not_found="a fresh interpreter cannot import it")


def _in_installed_places(origin: str) -> bool:
    real = os.path.realpath(origin)
    return any(real.startswith(root) for root in _installed_roots())


@functools.cache
def _installed_roots() -> tuple[str, ...]:
    """The interpreter's standard library and site-packages folders (each ending in a
    separator), resolved once: validation runs on every form edit."""
    places = sysconfig.get_paths()
    keys = ("stdlib", "platstdlib", "purelib", "platlib")
    return tuple({os.path.realpath(places[k]) + os.sep for k in keys if k in places})


def _lookup_import_path(path: str) -> object:
    """Import the module and find the attribute without calling it."""
    module_name, _, attr_path = path.partition(":")
    if not module_name or not attr_path or ":" in attr_path:
        raise ValueError(f"agent import path {path!r} must look like 'pkg.mod:factory'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ValueError(
            f"agent import path {path!r}: cannot import module {module_name!r} "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    target: object = module
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(
                f"agent import path {path!r}: module {module_name!r} has no attribute {attr_path!r}"
            ) from None
    if not callable(target):
        raise ValueError(
            f"agent import path {path!r} names a {type(target).__name__}, not a class or callable"
        )
    return target


def agent_factory(ref: AgentRef, agent: object) -> Callable[..., Any] | None:
    """The factory object behind an import-path or notebook agent (None for built-ins)."""
    if ref.kind == "import":
        found = _lookup_import_path(ref.name)
        return found if callable(found) else None
    if ref.kind == "pickle" and callable(agent):
        return agent
    return None


def _import_path_of(agent: object) -> str | None:
    """``"module:qualname"`` if a worker can import exactly this object by that name."""
    module = getattr(agent, "__module__", None)
    qualname = getattr(agent, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    if module == "__main__" or "<" in qualname:
        return None
    path = f"{module}:{qualname}"
    try:
        found = _lookup_import_path(path)
    except ValueError:
        return None
    if found is not agent or _worker_cannot_import(path) is not None:
        return None  # sent by value instead
    return path


def _pickle_ref(agent: Callable[..., Any]) -> AgentRef:
    import cloudpickle

    # A class from a module that only this kernel can import (sys.path changed in the
    # notebook) goes by value, as a notebook class does; by reference the worker could not
    # load it.
    name = getattr(agent, "__module__", None)
    module = sys.modules.get(name) if isinstance(name, str) and name != "__main__" else None
    if module is not None and name in cloudpickle.list_registry_pickle_by_value():
        module = None  # already sent by value; leave the registry as it is
    try:
        if module is not None:
            cloudpickle.register_pickle_by_value(module)
        data: bytes = cloudpickle.dumps(agent)
    except Exception as exc:
        raise ValueError(
            f"agent {agent!r} cannot be sent to workers: pickling failed "
            f"({type(exc).__name__}: {exc}); define it in a module and pass 'pkg.mod:factory'"
        ) from exc
    finally:
        if module is not None:
            cloudpickle.unregister_pickle_by_value(module)
    payload = base64.b64encode(data).decode("ascii")
    stored = _stored_identity(agent)
    if stored is not None:
        return AgentRef(kind="pickle", name=stored[0], source_sha256=stored[1], payload=payload)
    try:
        source = inspect.getsource(agent)
    except (OSError, TypeError):
        digest = hashlib.sha256(data).hexdigest()
    else:
        digest = hashlib.sha256(source.encode()).hexdigest()
    return AgentRef(
        kind="pickle", name=agent_display_name(agent), source_sha256=digest, payload=payload
    )


def check_same_agent(stored: Mapping[str, Any], agent: Any) -> None:
    """``from_payload(agent=…)`` must get the run's own agent, or the digest would differ."""
    given = resolve_agent(agent)
    want = (stored.get("kind"), stored.get("name"), stored.get("source_sha256"))
    have = (given.kind, given.name, given.source_sha256)
    if have != want:
        what = "its source changed" if have[:2] == want[:2] else f"the run used {want[1]!r}"
        raise ConfigError(
            f"agent {given.name!r} is not the agent of this run ({what}); "
            f"pass the same class or factory, or build a new TrainConfig"
        )
