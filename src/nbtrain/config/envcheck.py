"""Checks that a worker process will be able to make the environment the config names.

Workers are fresh interpreters: an env registered only in the notebook does not exist
there, so envs from outside Gymnasium are looked up once in a fresh interpreter started the
way workers are (:mod:`nbtrain.config.fresh`). Results are cached per registry entry, so
re-validating a config (every form edit) costs nothing.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import inspect
import json
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nbtrain.config.fresh import ask_fresh_interpreter

__all__ = ["EnvInfo", "check_env", "check_env_id"]

# gym.make's own keyword arguments a user may pass through env_kwargs.
_MAKE_KWARGS = frozenset({"disable_env_checker"})
_RESERVED_KWARGS = {
    "max_episode_steps": "set max_steps_per_episode instead",
    "render_mode": "nbtrain sets it from telemetry.frames",
}
_CACHE_SIZE = 128

_PROBE = """
import importlib, sys, warnings
warnings.simplefilter("ignore")
module, _, name = sys.argv[1].rpartition(":")
try:
    if module:
        importlib.import_module(module)
    import gymnasium
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(4)
sys.exit(0 if name in gymnasium.registry else 3)
"""


@dataclass(frozen=True)
class EnvInfo:
    """What validation learned by making the env once."""

    env_id: str
    observation_space: Any
    action_space: Any
    render_modes: tuple[str, ...]


_info_cache: OrderedDict[tuple[str, str], tuple[object, EnvInfo]] = OrderedDict()


def _remember(cache: OrderedDict[Any, Any], key: object, value: object) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def check_env_id(env_id: str) -> Any:
    """The ``EnvSpec`` for ``env_id`` (importing ``pkg.mod`` first for ``"pkg.mod:Env-v0"``)."""
    import gymnasium

    module, sep, name = env_id.partition(":")
    if not sep:
        module, name = "", env_id
    if sep and (not module or not name or ":" in name):
        raise ValueError(f"env id {env_id!r} must be 'EnvName-v0' or 'pkg.mod:EnvName-v0'")
    if module:
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise ValueError(
                f"env id {env_id!r}: cannot import module {module!r} ({type(exc).__name__}: {exc})"
            ) from exc
    spec = gymnasium.registry.get(name)
    if spec is None:
        where = f"module {module!r} was imported but registers no env {name!r}" if module else ""
        raise ValueError(
            f"unknown Gymnasium env id {env_id!r}{': ' + where if where else ''}"
            f"{_suggest(name, list(gymnasium.registry))} "
            "(list them with gymnasium.pprint_registry(); an env from your own package is "
            "'pkg.mod:EnvName-v0')"
        )
    _check_worker_can_see(env_id, module, name, spec)
    return spec


def _entry_point_module(entry_point: object) -> str | None:
    if isinstance(entry_point, str):
        return entry_point.partition(":")[0]
    module = getattr(entry_point, "__module__", None)
    return module if isinstance(module, str) else None


def _importable(entry_point: object) -> bool:
    if isinstance(entry_point, str):
        return not entry_point.startswith("__main__:")
    module = _entry_point_module(entry_point)
    qualname = getattr(entry_point, "__qualname__", None)
    if module in (None, "__main__") or not isinstance(qualname, str) or "<" in qualname:
        return False
    try:
        target: object = importlib.import_module(str(module))
        for part in qualname.split("."):
            target = getattr(target, part)
    except Exception:
        return False
    return target is entry_point


def _notebook_only(env_id: str, name: str, entry_point: object, detail: str) -> ValueError:
    module = _entry_point_module(entry_point)
    # gymnasium's modules register only gymnasium's ids: a variant needs its own module
    ours = module not in (None, "__main__") and not str(module).startswith("gymnasium.")
    if module and ours and _importable(entry_point):
        fix = f"use env_id={module + ':' + name!r} if importing {module!r} registers it"
    else:
        fix = (
            "put the env class and its gymnasium.register(...) call in a module (e.g. "
            f"my_envs.py next to the notebook) and use env_id={'my_envs:' + name!r}"
        )
    return ValueError(
        f"env {env_id!r} is registered only in this kernel ({detail}); workers are separate "
        f"processes and cannot make it. Use the 'module:Env-v0' form: {fix}"
    )


def _check_worker_can_see(env_id: str, module: str, name: str, spec: Any) -> None:
    entry_point = spec.entry_point
    if not _importable(entry_point):
        raise _notebook_only(env_id, name, entry_point, f"entry point {entry_point!r}")
    builtin = isinstance(entry_point, str) and entry_point.startswith("gymnasium.")
    if builtin and not module and name in _gymnasium_own_ids():
        return  # gymnasium registers it on import, in every worker too
    problem = ask_fresh_interpreter(
        _PROBE, env_id, not_found="a fresh Python interpreter does not know this id"
    )
    if problem is not None:
        raise _notebook_only(env_id, name, entry_point, problem)


@functools.cache
def _gymnasium_own_ids() -> frozenset[str]:
    """The ids that ``import gymnasium`` registers (read from the ``register(id=...)`` calls
    of ``gymnasium/envs/__init__.py``, without running anything). A notebook may register a
    variant of a built-in env under a new id with a ``gymnasium.`` entry point: that id
    exists only in the notebook's kernel. An id not found here is probed in a fresh
    interpreter, so an unusual gymnasium release only costs that probe."""
    try:
        import gymnasium.envs

        tree = ast.parse(inspect.getsource(gymnasium.envs))
    except (ImportError, OSError, TypeError, SyntaxError):
        return frozenset()
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register":
            for keyword in node.keywords:
                if keyword.arg == "id" and isinstance(keyword.value, ast.Constant):
                    ids.add(str(keyword.value.value))
    return frozenset(ids)


def _accepted_kwargs(spec: Any) -> dict[str, Any] | None:
    """Names the env constructor takes with their defaults, or None when it takes ``**kwargs``."""
    from gymnasium.envs.registration import load_env_creator

    entry_point = spec.entry_point
    try:
        creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
        signature = inspect.signature(creator)
    except Exception:
        return None
    names: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if param.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            names[param.name] = param.default
    return names


def _check_kwargs(env_id: str, spec: Any, env_kwargs: Mapping[str, Any]) -> None:
    for key, why in _RESERVED_KWARGS.items():
        if key in env_kwargs:
            raise ValueError(f"env_kwargs must not contain {key!r}: {why}")
    accepted = _accepted_kwargs(spec)
    if accepted is None:
        return
    allowed = [a for a in accepted if a not in _RESERVED_KWARGS]
    for key, value in env_kwargs.items():
        if key in _MAKE_KWARGS:
            continue
        if key not in accepted:
            raise ValueError(
                f"env_kwargs: {env_id} does not take {key!r}{_suggest(key, allowed)} "
                f"(accepted: {', '.join(allowed) or 'none'})"
            )
        # Any non-empty string is truthy: is_slippery="False" would make a slippery lake.
        if isinstance(accepted[key], bool) and isinstance(value, str):
            raise ValueError(f"env_kwargs: {key} takes True or False, not the string {value!r}")


def check_env(env_id: str, env_kwargs: Mapping[str, Any]) -> EnvInfo:
    """Check id and kwargs, then make the env once (cached) to learn its spaces."""
    spec = check_env_id(env_id)
    key = (env_id, json.dumps(env_kwargs, sort_keys=True, default=repr))
    cached = _info_cache.get(key)
    if cached is not None and cached[0] is spec:
        _info_cache.move_to_end(key)
        return cached[1]
    _check_kwargs(env_id, spec, env_kwargs)
    import gymnasium

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = gymnasium.make(env_id, **{**env_kwargs, "disable_env_checker": True})
    except Exception as exc:
        raise ValueError(
            f"env_kwargs: making {env_id} with {dict(env_kwargs)!r} failed "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    try:
        modes = env.metadata.get("render_modes") or ()
        info = EnvInfo(
            env_id=env_id,
            observation_space=env.observation_space,
            action_space=env.action_space,
            render_modes=tuple(str(m) for m in modes),
        )
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env.close()
    _remember(_info_cache, key, (spec, info))
    return info
