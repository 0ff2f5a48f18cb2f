"""Resolve a config's workers: ids, seeds, merged agent kwargs and policies, each checked.

Everything a worker would find out only after launch is found here instead: kwargs a
built-in agent does not take, an import-path or notebook factory called with a keyword it
does not accept (checked against its signature, never by calling it), a policy file that
does not fit the agent. A policy file also supplies the structure it was saved with (bins
and bounds, or the tile coding), so evaluating it needs nothing but its path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from nbtrain.config.agentkw import (
    CHECKED_AGENTS,
    check_agent_fits_env,
    check_agent_kwargs,
    check_factory_call,
)
from nbtrain.config.envcheck import EnvInfo
from nbtrain.config.parts import WorkerItem, WorkerSpec
from nbtrain.ids import assign_worker_ids
from nbtrain.seeding import worker_seed

__all__ = ["ResolvedWorker", "agent_of_policy", "raw_id", "resolve_workers"]


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


def _policy_structure(agent: str, path: Path, kwargs: dict[str, Any], where: str) -> dict[str, Any]:
    """``kwargs`` completed with the structure stored in the policy file (they must agree)."""
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
    for key, value in structure.items():
        if key in kwargs and kwargs[key] != value:
            raise ValueError(
                f"{where}: {key}={kwargs[key]!r} disagrees with the policy file "
                f"{str(path)!r}, which was saved with {key}={value!r}; leave {key} out "
                "(the policy file supplies it)"
            )
    return {**kwargs, **structure}


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
            merged = _policy_structure(builtin, policy, merged, where)
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
