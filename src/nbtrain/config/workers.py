"""Resolve a config's workers: ids, seeds, merged agent kwargs and policies, each checked.

Everything a worker would find out only after launch is found here instead: kwargs a
built-in agent does not take, an import-path or notebook factory called with a keyword it
does not accept (checked against its signature, never by calling it), a policy file that
does not fit the agent. A policy file also supplies the structure it was saved with (bins
and bounds, or the tile coding), so evaluating it needs nothing but its path.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from nbtrain.config.agentkw import (
    CHECKED_AGENTS,
    check_agent_fits_env,
    check_agent_kwargs,
    check_factory_call,
)
from nbtrain.config.envcheck import EnvInfo
from nbtrain.config.limits import MAX_WORKERS
from nbtrain.config.parts import WorkerItem, WorkerSpec, plain_int
from nbtrain.ids import assign_worker_ids, normalize_worker_id
from nbtrain.seeding import worker_seed

__all__ = ["ResolvedWorker", "agent_of_policy", "raw_id", "resolve_workers", "workers_shape"]


class ResolvedWorker(NamedTuple):
    """A resolved worker: normalized id, seed, merged kwargs and its policy (if any)."""

    spec: WorkerSpec | None
    worker_id: str
    seed: int
    agent_kwargs: dict[str, Any]
    policy_path: Path | None


def raw_id(item: object) -> object:
    return item.worker_id if isinstance(item, WorkerSpec) else item


def agent_of_policy(path: object) -> str | None:
    """The built-in agent that saved the policy at ``path``, or None if it is not one's."""
    from nbtrain.agents.policyfile import PolicyFileError, policy_agent

    if not isinstance(path, str | Path):
        return None
    try:
        return policy_agent(path)[0]
    except (PolicyFileError, OSError):
        return None


def _family(agent: str) -> str:
    return "tile" if agent == "tile_sarsa" else "tabular"


def _encoding(agent: str, kwargs: dict[str, Any], observation_space: Any) -> object:
    """How the agent made with ``kwargs`` would encode observations (what its policy file
    records), or None if the kwargs do not make one (reported by the env-fit check)."""
    from nbtrain.agents.discretize import make_discretizer
    from nbtrain.agents.tilecoding import make_tile_coder
    from nbtrain.config.agentkw import builtin_params

    try:
        if agent == "tile_sarsa":
            full = {**builtin_params(agent), **kwargs}
            keys = ("tilings", "tiles", "bounds", "hash_size")
            return make_tile_coder(
                observation_space, max_rows=2**62, **{k: full[k] for k in keys}
            ).config
        return make_discretizer(observation_space, kwargs.get("bins"), kwargs.get("bounds")).config
    except (TypeError, ValueError):
        return None


def _policy_structure(
    agent: str, path: Path, kwargs: dict[str, Any], observation_space: Any, where: str
) -> dict[str, Any]:
    """``kwargs`` completed with the structure stored in the policy file; structural kwargs
    that are given must encode observations exactly as the file does."""
    from nbtrain.agents.policyfile import PolicyFileError, policy_agent

    try:
        saved_by, structure = policy_agent(path)
    except PolicyFileError as exc:
        raise ValueError(f"{where}: {exc}") from None
    except OSError as exc:
        raise ValueError(
            f"{where}: cannot read policy file {str(path)!r}: {exc.strerror or exc}"
        ) from None
    if _family(saved_by) != _family(agent):
        raise ValueError(
            f"{where}: policy_path {str(path)!r} was saved by {saved_by!r}, which {agent!r} "
            f"cannot load; use agent={saved_by!r}"
        )
    given = {k: kwargs[k] for k in structure if k in kwargs}
    if given:
        saved = _encoding(agent, structure, observation_space)
        wanted = _encoding(agent, {**structure, **given}, observation_space)
        if wanted != saved:
            shown = ", ".join(f"{k}={v!r}" for k, v in given.items())
            stored = ", ".join(f"{k}={structure[k]!r}" for k in given)
            raise ValueError(
                f"{where}: {shown} disagrees with the policy file {str(path)!r}, which was "
                f"saved with {stored}; leave them out (the policy file supplies them)"
            )
    return {**kwargs, **{k: v for k, v in structure.items() if k not in given}}


def workers_shape(value: object) -> object:
    """The ``workers`` field before validation: a count in ``[1, MAX_WORKERS]`` or a list
    of at most ``MAX_WORKERS`` items, each a worker id (checked), None, a spec or a mapping."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if not 1 <= int(value) <= MAX_WORKERS:
            raise ValueError(
                f"workers must be between 1 and {MAX_WORKERS} (nbtrain's cap on workers "
                f"in one run); got {value!r}"
            )
        return int(value)
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        value = tolist()
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise ValueError(
            f"workers must be a number of workers >= 1 or a list of worker ids / "
            f"WorkerSpec / None; got {value!r}"
        )
    if not value:
        raise ValueError("workers must not be an empty list; a run needs at least one worker")
    if len(value) > MAX_WORKERS:
        raise ValueError(
            f"workers lists {len(value)} workers; nbtrain's cap is {MAX_WORKERS} per run"
        )
    items: list[object] = []
    for index, item in enumerate(value):
        if item is None or isinstance(item, WorkerSpec):
            items.append(item)
            continue
        if isinstance(item, Mapping):  # a WorkerSpec as a config file saves it
            items.append(_spec(index, item))
            continue
        if isinstance(item, bool) or not isinstance(item, numbers.Integral | str):
            raise ValueError(
                f"workers[{index}] is {item!r}; use a worker id (int or str), None or "
                "WorkerSpec(...)"
            )
        normalize_worker_id(item)
        items.append(plain_int(item))
    return items


def _spec(index: int, item: Mapping[Any, Any]) -> WorkerSpec:
    """``workers[index]`` as a WorkerSpec, its errors named here: left to the field's union
    (count, or list of ids / specs / None), pydantic reported every branch it tried, the
    real cause last."""
    try:
        return WorkerSpec.model_validate(item)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'value'}: "
            f"{error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        raise ValueError(f"workers[{index}] is not a valid WorkerSpec: {problems}") from None


def resolve_workers(
    items: Sequence[WorkerItem],
    *,
    run_seed: int,
    builtin: str,
    run_kwargs: dict[str, Any],
    env: EnvInfo,
    factory: Callable[..., Any] | None,
    label: str,
    policy_path: Path | None,
    needs_policy: bool,
) -> tuple[ResolvedWorker, ...]:
    """One :class:`ResolvedWorker` per item, in order; ``ValueError`` names the worker."""
    ids = assign_worker_ids(raw_id(item) for item in items)
    out: list[ResolvedWorker] = []
    for item, worker_id in zip(items, ids, strict=True):
        spec = item if isinstance(item, WorkerSpec) else None
        where = "agent_kwargs"
        merged = dict(run_kwargs)
        if spec is not None and spec.agent_kwargs:
            merged.update(spec.agent_kwargs)
            where = f"agent_kwargs of worker {worker_id}"
        policy = spec.policy_path if spec is not None and spec.policy_path else policy_path
        if policy is None and needs_policy:
            raise ValueError(
                f"mode='eval' needs a policy for worker {worker_id}: set policy_path (a "
                "policy saved by a training run), or WorkerSpec(policy_path=...) per worker"
            )
        merged = check_agent_kwargs(builtin, merged, where)
        if policy is not None and builtin in CHECKED_AGENTS:
            merged = _policy_structure(builtin, policy, merged, env.observation_space, where)
        check_agent_fits_env(
            builtin, merged, env.env_id, env.observation_space, env.action_space, where
        )
        if factory is not None:
            check_factory_call(factory, merged, where, label)
        seed = spec.seed if spec is not None and spec.seed is not None else None
        if seed is None:
            seed = worker_seed(run_seed, worker_id)
        out.append(ResolvedWorker(spec, worker_id, seed, merged, policy))
    return tuple(out)
