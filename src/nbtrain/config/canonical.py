"""A config resolved to its canonical payload and digest, and a payload read back.

Everything a worker needs is resolved here, in the kernel, once: worker ids, per-worker
seeds and agent kwargs, the agent reference. The digest is computed from the canonical
payload, which holds only resolved plain values, so two configs that mean the same run
have the same digest in every process, and any change (a worker id too) changes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from nbtrain.config.agentkw import check_agent_kwargs
from nbtrain.config.agentref import agent_factory, check_same_agent, resolve_agent
from nbtrain.config.envcheck import check_env, check_env_id
from nbtrain.config.fields import TrainFields
from nbtrain.config.limits import resolve_step_limit
from nbtrain.config.parts import WorkerItem
from nbtrain.config.workers import ResolvedWorker, resolve_workers
from nbtrain.errors import ConfigError
from nbtrain.worker.config_file import AgentRef

__all__ = ["Resolved", "payload_fields", "resolve"]


class Resolved(NamedTuple):
    """What a validated config resolves to (``TrainConfig`` keeps each in a private attr)."""

    agent_ref: AgentRef
    run_kwargs: dict[str, Any]
    workers: tuple[ResolvedWorker, ...]
    step_limit: int
    canonical_json: str
    digest: str


def resolve(config: TrainFields) -> Resolved:
    """Resolve validated fields against the env and agent; ``ValueError`` if they do not fit."""
    info = check_env(config.env_id, config.env_kwargs)
    frames = config.telemetry.frames
    if frames != "none" and frames not in info.render_modes:
        raise ValueError(
            f"telemetry.frames={frames!r}: {config.env_id} cannot render {frames!r}; "
            f"its render modes are {list(info.render_modes)}"
        )
    ref = resolve_agent(config.agent)
    builtin = ref.name if ref.kind == "builtin" else ""
    run_kwargs = check_agent_kwargs(builtin, config.agent_kwargs, "agent_kwargs")
    raw_items: list[WorkerItem] = (
        [None] * config.workers if isinstance(config.workers, int) else list(config.workers)
    )
    workers = resolve_workers(
        raw_items,
        run_seed=config.seed,
        builtin=builtin,
        run_kwargs=run_kwargs,
        env=info,
        factory=agent_factory(ref, config.agent),
        label=ref.name,
        policy_path=config.policy_path,
        needs_policy=config.mode == "eval",
    )
    step_limit = resolve_step_limit(config.max_steps_per_episode, check_env_id(config.env_id))
    canonical_json = json.dumps(
        _payload(config, ref, run_kwargs, workers, step_limit),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = hashlib.sha256(canonical_json.encode("utf-8")).hexdigest()
    return Resolved(ref, run_kwargs, workers, step_limit, canonical_json, digest)


def _payload(
    config: TrainFields,
    ref: AgentRef,
    run_kwargs: dict[str, Any],
    workers: tuple[ResolvedWorker, ...],
    step_limit: int,
) -> dict[str, Any]:
    return {
        "name": config.name,
        "env_id": config.env_id,
        "env_kwargs": config.env_kwargs,
        "agent": {"kind": ref.kind, "name": ref.name, "source_sha256": ref.source_sha256},
        "agent_kwargs": run_kwargs,
        "episodes": config.episodes,
        "max_steps_per_episode": step_limit,
        "seed": config.seed,
        "workers": [
            {
                "worker_id": w.worker_id,
                "seed": w.seed,
                "agent_kwargs": w.agent_kwargs,
                "policy_path": None if w.policy_path is None else str(w.policy_path),
            }
            for w in workers
        ],
        "step_delay": float(config.step_delay),
        "telemetry": config.telemetry.model_dump(),
        "mode": config.mode,
        "policy_path": None if config.policy_path is None else str(config.policy_path),
        "checkpoint_every": config.checkpoint_every,
    }


def payload_fields(payload: Mapping[str, Any], agent: Any) -> dict[str, Any]:
    """Return ``TrainConfig`` input from a canonical payload (``agent``: a notebook's agent)."""
    data = dict(payload)
    ref = data.get("agent")
    if agent is not None:
        if isinstance(ref, Mapping):
            check_same_agent(ref, agent)
        data["agent"] = agent
    elif isinstance(ref, Mapping):
        kind, name = ref.get("kind"), str(ref.get("name"))
        if kind not in ("builtin", "import"):
            raise ConfigError(
                f"the run's agent {name!r} was defined in a notebook and is not stored by "
                f"value; pass the class or factory again as agent={name.split('.')[-1]}"
            )
        data["agent"] = name
    return data
