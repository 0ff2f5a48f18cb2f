"""``TrainFields``: a run config's fields, and the checks made as each is validated.

The base class of :class:`~nbtrain.config.model.TrainConfig`, which adds what the fields
resolve to together (:mod:`nbtrain.config.canonical`) and the public API; a base class, so
TrainConfig keeps these fields, in this order, and its JSON schema. Raw input gets its
defaults first: the name, and in eval mode the agent that saved the policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nbtrain.config.agentkw import check_agent_kwargs
from nbtrain.config.agentref import agent_display_name, resolve_agent
from nbtrain.config.envcheck import check_env, check_env_id
from nbtrain.config.frozen import FrozenDict, freeze_dict, freeze_list
from nbtrain.config.parts import (
    FROZEN,
    Count,
    Seed,
    TelemetryConfig,
    WorkerItem,
    WorkerSpec,
    json_dict,
    plain_float,
    policy_file,
)
from nbtrain.config.workers import agent_of_policy, raw_id, workers_shape
from nbtrain.ids import assign_worker_ids

__all__ = ["TrainFields", "default_name"]


def default_name(env_id: object, agent: object) -> str:
    """Return the name a config gets when it is given none (or a blank one)."""
    return f"{env_id}-{agent_display_name(agent)}"


class TrainFields(BaseModel):
    """The fields of a :class:`~nbtrain.config.model.TrainConfig`, checked one by one."""

    model_config = FROZEN

    name: str = ""
    env_id: str
    env_kwargs: dict[str, Any] = Field(default_factory=lambda: FrozenDict({}, "env_kwargs"))
    agent: str | Callable[..., Any] = "q_learning"
    agent_kwargs: dict[str, Any] = Field(default_factory=lambda: FrozenDict({}, "agent_kwargs"))
    episodes: Count
    # None: the env's registered limit (1000 if it has none); see limits.resolve_step_limit
    max_steps_per_episode: Count | None = None
    seed: Seed = 0
    workers: Count | list[WorkerItem] = 1
    step_delay: Annotated[
        float, BeforeValidator(plain_float), Field(ge=0, allow_inf_nan=False, strict=True)
    ] = 0.0
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    mode: Literal["train", "eval"] = "train"
    policy_path: Path | None = None
    checkpoint_every: Count | None = 100

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: object) -> object:
        if isinstance(data, Mapping) and data.get("mode") == "eval" and "agent" not in data:
            saved_by = agent_of_policy(_first_policy(data))
            if saved_by is not None:  # evaluating needs only the policy: it names its agent
                data = {**data, "agent": saved_by}
        if isinstance(data, Mapping) and "env_id" in data:
            name = data.get("name")
            if name is None or (isinstance(name, str) and not name.strip()):
                data = {
                    **data,
                    "name": default_name(data["env_id"], data.get("agent", "q_learning")),
                }
        return data

    @field_validator("env_id")
    @classmethod
    def _env_id(cls, value: str) -> str:
        check_env_id(value)
        return value

    @field_validator("env_kwargs", mode="before")
    @classmethod
    def _env_kwargs_plain(cls, value: object) -> object:
        return json_dict(value, "env_kwargs")

    @field_validator("env_kwargs")
    @classmethod
    def _env_kwargs(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        env_id = info.data.get("env_id")
        if isinstance(env_id, str):
            check_env(env_id, value)
        return freeze_dict(value, "env_kwargs")

    @field_validator("agent", mode="before")
    @classmethod
    def _agent_type(cls, value: object) -> object:
        if isinstance(value, str) or callable(value):
            return value
        raise ValueError(
            "agent must be 'q_learning', 'sarsa', 'expected_sarsa', 'tile_sarsa', 'random', an "
            "import path "
            f"'pkg.mod:factory', or a class/callable; got {value!r}"
        )

    @field_validator("agent")
    @classmethod
    def _agent(cls, value: str | Callable[..., Any]) -> str | Callable[..., Any]:
        resolve_agent(value)
        return value

    @field_validator("agent_kwargs", mode="before")
    @classmethod
    def _agent_kwargs(cls, value: object) -> object:
        return json_dict(value, "agent_kwargs")

    @field_validator("agent_kwargs")
    @classmethod
    def _agent_kwargs_keys(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        agent = info.data.get("agent")
        if isinstance(agent, str):
            check_agent_kwargs(agent, value, "agent_kwargs")
        return freeze_dict(value, "agent_kwargs")

    @field_validator("workers", mode="before")
    @classmethod
    def _workers_shape(cls, value: object) -> object:
        return workers_shape(value)

    @field_validator("workers")
    @classmethod
    def _workers_unique(cls, value: int | list[WorkerItem]) -> int | list[WorkerItem]:
        if isinstance(value, list):
            assign_worker_ids(raw_id(item) for item in value)
            return freeze_list(value, "workers")
        return value

    @field_validator("policy_path")
    @classmethod
    def _policy_path(cls, value: Path | None) -> Path | None:
        return policy_file(value)


def _first_policy(data: Mapping[str, Any]) -> object:
    """Return the run's policy_path, else the first worker spec's (for the eval agent default)."""
    if data.get("policy_path") is not None:
        return data["policy_path"]
    workers = data.get("workers")
    for item in workers if isinstance(workers, list) else ():
        path = item.get("policy_path") if isinstance(item, Mapping) else None
        if isinstance(item, WorkerSpec):
            path = item.policy_path
        if path is not None:
            return path
    return None
