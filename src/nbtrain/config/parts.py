"""The small models inside a ``TrainConfig`` and the field types they share.

Integers are strict (``True`` or ``"5"`` are mistakes, not 1 or 5) but numpy integers are
welcome, since notebooks produce them everywhere.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from nbtrain.config.agentkw import plain_json
from nbtrain.ids import normalize_worker_id
from nbtrain.worker.spec import TelemetrySpec

__all__ = [
    "FROZEN",
    "PositiveInt",
    "Seed",
    "TelemetryConfig",
    "WorkerItem",
    "WorkerSpec",
    "json_dict",
    "plain_float",
    "plain_int",
]

_SEED_MAX = 2**63 - 1


def plain_int(value: object) -> object:
    """numpy integers become ints; bools and strings stay, so strict mode rejects them."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value


def plain_float(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, numbers.Real):
        return float(value)
    return value


PositiveInt = Annotated[int, BeforeValidator(plain_int), Field(strict=True, ge=1)]
Seed = Annotated[int, BeforeValidator(plain_int), Field(strict=True, ge=0, le=_SEED_MAX)]

FROZEN = ConfigDict(extra="forbid", frozen=True)


class TelemetryConfig(BaseModel):
    """What each worker records: every step, every n-th, or none; optional rendered frames."""

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
        return TelemetrySpec(steps=self.steps, frames=self.frames, frame_every=self.frame_every)


class WorkerSpec(BaseModel):
    """One worker of a run; ``worker_id=None`` gets the next free auto id."""

    model_config = FROZEN

    worker_id: int | str | None = None
    seed: Seed | None = None
    agent_kwargs: dict[str, Any] = Field(default_factory=dict)

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


WorkerItem = int | str | WorkerSpec | None


def json_dict(value: object, where: str) -> object:
    if not isinstance(value, Mapping):
        return value  # pydantic reports the type error
    return plain_json(value, where)
