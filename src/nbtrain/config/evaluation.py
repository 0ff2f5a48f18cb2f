"""The config of an evaluation run: a training run's workers, each playing its own policy.

``Run.evaluate()`` wraps :func:`evaluation_config`; being a pure function of a config and
the policy files, it can be tested (and used) without a database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrain.ids import normalize_worker_id

if TYPE_CHECKING:
    from nbtrain.config.model import TrainConfig

__all__ = ["evaluation_config"]


def evaluation_config(
    config: TrainConfig,
    policies: Mapping[object, str | os.PathLike[str]],
    episodes: int = 100,
) -> TrainConfig:
    """An eval run of ``config``: the same env, agent and worker ids (and seeds, agent kwargs,
    time limit, telemetry), ``mode="eval"``, ``episodes`` per worker, and each worker given
    its own policy from ``policies`` (``{worker_id: path}``, e.g. the training run's
    ``policy-{worker_id}.json`` files) as ``WorkerSpec.policy_path``.

    Only the workers named in ``policies`` take part (in ``config``'s order); a worker id that
    is not one of ``config``'s is a ``ValueError``, as is an empty ``policies``.
    """
    from nbtrain.config.model import TrainConfig
    from nbtrain.config.parts import WorkerSpec

    wanted = {normalize_worker_id(wid): Path(path) for wid, path in policies.items()}
    if not wanted:
        raise ValueError("evaluation needs at least one worker's policy; policies is empty")
    unknown = sorted(set(wanted) - set(config.worker_ids))
    if unknown:
        raise ValueError(
            f"policies name worker(s) {', '.join(unknown)} that the run does not have; "
            f"its workers: {', '.join(config.worker_ids)}"
        )
    specs = []
    for worker_id, spec in config.worker_spec_items():
        if worker_id not in wanted:
            continue
        specs.append(
            WorkerSpec(
                worker_id=worker_id,
                seed=spec.seed if spec is not None else None,
                agent_kwargs=dict(spec.agent_kwargs) if spec is not None else {},
                policy_path=wanted[worker_id],
            )
        )
    return TrainConfig(
        name=f"{config.name} (eval)",
        env_id=config.env_id,
        env_kwargs=dict(config.env_kwargs),
        agent=config.agent,
        agent_kwargs=dict(config.agent_kwargs),
        episodes=episodes,
        max_steps_per_episode=config.step_limit,
        seed=config.seed,
        workers=specs,
        step_delay=config.step_delay,
        telemetry=config.telemetry,
        mode="eval",
        policy_path=None,
        checkpoint_every=None,
    )
