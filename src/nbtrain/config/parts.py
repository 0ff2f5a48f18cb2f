"""The small models inside a ``TrainConfig`` and the field types they share.

Integers are strict (``True`` or ``"5"`` are mistakes, not 1 or 5) but numpy integers are
welcome, since notebooks produce them everywhere.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from nbtrain.config.agentkw import plain_json
from nbtrain.config.frozen import FrozenDict, freeze_dict
from nbtrain.config.limits import MAX_COUNT
from nbtrain.ids import normalize_worker_id
from nbtrain.worker.config_file import TelemetrySpec

__all__ = [
    "FROZEN",
    "Count",
    "PositiveInt",
    "Seed",
    "TelemetryConfig",
    "WorkerItem",
    "WorkerSpec",
    "json_dict",
    "plain_float",
    "plain_int",
    "policy_file",
]

_SEED_MAX = 2**63 - 1


def plain_int(value: object) -> object:
    """Turn numpy integers into ints; bools and strings stay, so strict mode rejects them."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value


def plain_float(value: object) -> object:
    """Turn real numbers into floats; a bool is an error, other types stay for pydantic."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def _capped(value: object, info: ValidationInfo) -> object:
    """Turn numpy ints into ints; counts past :data:`MAX_COUNT` get an error naming the cap."""
    value = plain_int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > MAX_COUNT:
        raise ValueError(
            f"{info.field_name}={value} is more than {MAX_COUNT:,} (10**9), nbtrain's cap on "
            "counts; nothing that large can finish"
        )
    return value


PositiveInt = Annotated[int, BeforeValidator(plain_int), Field(strict=True, ge=1)]
# An int >= 1 and <= MAX_COUNT (episodes, steps per episode, checkpoint interval).
Count = Annotated[int, BeforeValidator(_capped), Field(strict=True, ge=1)]
Seed = Annotated[int, BeforeValidator(plain_int), Field(strict=True, ge=0, le=_SEED_MAX)]

FROZEN = ConfigDict(extra="forbid", frozen=True)


class TelemetryConfig(BaseModel):
    """What each worker records: every step, every n-th, or none; optional rendered frames.

    Parameters
    ----------
    steps : {"all", "none"} or int, optional
        Record every step (default), no step, or every n-th step (``n >= 1``). Episodes
        are always recorded.
    frames : {"none", "ansi", "rgb_array"}, optional
        Send rendered frames to the live dashboard (not stored). Default ``"none"``.
    frame_every : int, optional
        Render every this many steps. Default 1.

    Raises
    ------
    pydantic.ValidationError
        A value is out of range or of the wrong kind.

    Examples
    --------
    >>> nbtrain.TelemetryConfig(steps=10, frames="ansi")
    TelemetryConfig(steps=10, frames='ansi', frame_every=1)
    """

    model_config = FROZEN

    steps: Literal["all", "none"] | int = "all"
    frames: Literal["none", "ansi", "rgb_array"] = "none"
    frame_every: PositiveInt = 1

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, value: object) -> object:
        if value in ("all", "none") and isinstance(value, str):
            return value
        number = plain_int(value)
        if isinstance(number, int) and not isinstance(number, bool) and number >= 1:
            return number
        raise ValueError(
            f"steps must be 'all', 'none' or an integer n >= 1 (every n-th step); got {value!r}"
        )

    def to_spec(self) -> TelemetrySpec:
        """Return the worker-side copy of these settings (a msgspec struct, no pydantic)."""
        return TelemetrySpec(steps=self.steps, frames=self.frames, frame_every=self.frame_every)


class WorkerSpec(BaseModel):
    """One worker of a run, when it needs more than an id.

    Parameters
    ----------
    worker_id : int or str, optional
        Its id (see :func:`nbtrain.normalize_worker_id`); None gets the next free one.
    seed : int, optional
        Its own seed instead of the one derived from the run's seed and its id.
    agent_kwargs : dict, optional
        Agent keyword arguments that override the run's for this worker.
    policy_path : path, optional
        Its own policy file (overrides the run's ``policy_path``), e.g. in an eval run in
        which each worker plays the policy of the training worker with its id.

    Raises
    ------
    pydantic.ValidationError
        A value is invalid (an id breaking the id rule, a missing policy file, ...).

    Examples
    --------
    >>> nbtrain.WorkerSpec(worker_id="gpu_a", seed=7, agent_kwargs={"alpha": 0.2})
    WorkerSpec(worker_id='gpu_a', seed=7, agent_kwargs={'alpha': 0.2}, policy_path=None)
    """

    model_config = FROZEN

    worker_id: int | str | None = None
    seed: Seed | None = None
    agent_kwargs: dict[str, Any] = Field(
        default_factory=lambda: FrozenDict({}, "WorkerSpec.agent_kwargs")
    )
    # this worker's own policy (overrides the run's ``policy_path``), e.g. for an eval run
    # in which every worker plays the policy of the training worker with its id
    policy_path: Path | None = None

    @field_validator("worker_id", mode="before")
    @classmethod
    def _worker_id(cls, value: object) -> object:
        if value is None:
            return None
        normalize_worker_id(value)  # raises InvalidWorkerIdError naming value and rule
        return plain_int(value)

    @field_validator("agent_kwargs", mode="before")
    @classmethod
    def _kwargs(cls, value: object) -> object:
        return json_dict(value, "agent_kwargs")

    @field_validator("agent_kwargs")
    @classmethod
    def _kwargs_frozen(cls, value: dict[str, Any]) -> dict[str, Any]:
        return freeze_dict(value, "WorkerSpec.agent_kwargs")

    @field_validator("policy_path")
    @classmethod
    def _policy_path(cls, value: Path | None) -> Path | None:
        return policy_file(value)


WorkerItem = int | str | WorkerSpec | None


def json_dict(value: object, where: str) -> object:
    """Turn a mapping into plain JSON values (see ``plain_json``); leave others to pydantic."""
    if not isinstance(value, Mapping):
        return value  # pydantic reports the type error
    return plain_json(value, where)


def policy_file(value: Path | None) -> Path | None:
    """Return ``value`` as an absolute path to an existing file, or None."""
    if value is None:
        return None
    path = Path(os.path.abspath(value.expanduser()))
    if not path.exists():
        raise ValueError(f"policy_path {str(path)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"policy_path {str(path)!r} is a folder; give the policy file")
    return path
