"""``TrainConfig``: the validated run config, its canonical payload and digest.

Everything a worker needs is resolved here, in the kernel, once: worker ids, per-worker
seeds and agent kwargs, the agent reference. The digest is computed from the canonical
payload, which holds only resolved plain values, so two configs that mean the same run
have the same digest in every process, and any change (a worker id too) changes it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nbtrain.config.agentkw import check_agent_kwargs
from nbtrain.config.agentref import (
    agent_display_name,
    agent_factory,
    check_same_agent,
    resolve_agent,
)
from nbtrain.config.envcheck import check_env, check_env_id
from nbtrain.config.limits import resolve_step_limit
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
from nbtrain.config.workers import (
    ResolvedWorker,
    agent_of_policy,
    raw_id,
    resolve_workers,
    workers_shape,
)
from nbtrain.errors import ConfigError
from nbtrain.ids import assign_worker_ids
from nbtrain.worker.config_file import AgentRef, WorkerConfig

__all__ = ["TelemetryConfig", "TrainConfig", "WorkerSpec"]


def default_name(env_id: object, agent: object) -> str:
    return f"{env_id}-{agent_display_name(agent)}"


class TrainConfig(BaseModel):
    """A validated run config: what to train, with which agent, on how many workers.

    Equal configs (same canonical payload) have the same :attr:`digest`. The model is
    frozen; change a copy with :meth:`model_copy` (``update=``), which validates again.

    Parameters
    ----------
    env_id : str
        A registered Gymnasium id (``"FrozenLake-v1"``) or ``"module:Id"``.
    episodes : int
        Episodes per worker, ``1..10**9``.
    name : str, optional
        A label for people; default ``"{env_id}-{agent}"``.
    env_kwargs : dict, optional
        Keyword arguments for ``gymnasium.make`` (JSON values).
    agent : str or callable, optional
        A built-in agent name (``"q_learning"``, ``"sarsa"``, ``"expected_sarsa"``,
        ``"tile_sarsa"``, ``"random"``), ``"module:Class"``, or a class or factory defined
        in the notebook (shipped to workers by value). Default ``"q_learning"``.
    agent_kwargs : dict, optional
        Keyword arguments for the agent; checked for built-in agents.
    max_steps_per_episode : int, optional
        Step cap per episode; default the env's registered limit, else 1000.
    seed : int, optional
        The run's base seed; each worker derives its own from it and its id. Default 0.
    workers : int or list, optional
        A number of workers, or a list of worker ids, :class:`WorkerSpec` or None (next
        free id). Default 1.
    step_delay : float, optional
        Seconds to sleep after each step (to watch a run live). Default 0.
    telemetry : TelemetryConfig, optional
        What each worker records.
    mode : {"train", "eval"}, optional
        ``"eval"`` plays a saved policy greedily and does not learn.
    policy_path : path, optional
        A policy file to start from (``"train"``) or to play (``"eval"``).
    checkpoint_every : int or None, optional
        Save the agent every this many episodes (and when it completes or is stopped);
        None: only then, so a worker that fails saves nothing. Default 100.

    Raises
    ------
    pydantic.ValidationError
        A field is invalid; the error names the field and the problem.

    Examples
    --------
    >>> cfg = nbtrain.TrainConfig(env_id="FrozenLake-v1", episodes=500, workers=4)
    >>> cfg.worker_ids
    ['000001', '000002', '000003', '000004']

    Notes
    -----
    Caps: ``episodes``, ``max_steps_per_episode`` and ``checkpoint_every`` are at most
    ``MAX_COUNT`` (10**9: past that nothing finishes, and values must fit SQLite's int64);
    ``workers`` at most ``MAX_WORKERS`` (1024: each worker is a process with its pipes and
    a live tab on one machine, so more is a typo, and it keeps file descriptors under a
    common ``ulimit -n`` of 4096).
    """

    model_config = FROZEN

    name: str = ""
    env_id: str
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    agent: str | Callable[..., Any] = "q_learning"
    agent_kwargs: dict[str, Any] = Field(default_factory=dict)
    episodes: Count
    # None: the env's registered limit (1000 if it has none); see limits.resolve_step_limit
    max_steps_per_episode: Count | None = None
    seed: Seed = 0
    workers: Count | list[WorkerItem] = 1
    step_delay: Annotated[float, BeforeValidator(plain_float), Field(ge=0, allow_inf_nan=False)] = (
        0.0
    )
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    mode: Literal["train", "eval"] = "train"
    policy_path: Path | None = None
    checkpoint_every: Count | None = 100

    _agent_ref: AgentRef = PrivateAttr()
    _run_kwargs: dict[str, Any] = PrivateAttr()
    _workers: tuple[ResolvedWorker, ...] = PrivateAttr()
    _step_limit: int = PrivateAttr()
    _canonical_json: str = PrivateAttr()
    _digest: str = PrivateAttr()

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
        return value

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
        return value

    @field_validator("workers", mode="before")
    @classmethod
    def _workers_shape(cls, value: object) -> object:
        return workers_shape(value)

    @field_validator("workers")
    @classmethod
    def _workers_unique(cls, value: int | list[WorkerItem]) -> int | list[WorkerItem]:
        if isinstance(value, list):
            assign_worker_ids(raw_id(item) for item in value)
        return value

    @field_validator("policy_path")
    @classmethod
    def _policy_path(cls, value: Path | None) -> Path | None:
        return policy_file(value)

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        info = check_env(self.env_id, self.env_kwargs)
        frames = self.telemetry.frames
        if frames != "none" and frames not in info.render_modes:
            raise ValueError(
                f"telemetry.frames={frames!r}: {self.env_id} cannot render {frames!r}; "
                f"its render modes are {list(info.render_modes)}"
            )
        ref = resolve_agent(self.agent)
        builtin = ref.name if ref.kind == "builtin" else ""
        run_kwargs = check_agent_kwargs(builtin, self.agent_kwargs, "agent_kwargs")
        raw_items: list[WorkerItem] = (
            [None] * self.workers if isinstance(self.workers, int) else list(self.workers)
        )
        self._workers = resolve_workers(
            raw_items,
            run_seed=self.seed,
            builtin=builtin,
            run_kwargs=run_kwargs,
            env=info,
            factory=agent_factory(ref, self.agent),
            label=ref.name,
            policy_path=self.policy_path,
            needs_policy=self.mode == "eval",
        )
        self._step_limit = resolve_step_limit(self.max_steps_per_episode, check_env_id(self.env_id))
        self._agent_ref = ref
        self._run_kwargs = run_kwargs
        self._canonical_json = json.dumps(
            self._payload(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        self._digest = hashlib.sha256(self._canonical_json.encode("utf-8")).hexdigest()
        return self

    def _payload(self) -> dict[str, Any]:
        ref = self._agent_ref
        return {
            "name": self.name,
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "agent": {"kind": ref.kind, "name": ref.name, "source_sha256": ref.source_sha256},
            "agent_kwargs": self._run_kwargs,
            "episodes": self.episodes,
            "max_steps_per_episode": self._step_limit,
            "seed": self.seed,
            "workers": [
                {
                    "worker_id": w.worker_id,
                    "seed": w.seed,
                    "agent_kwargs": w.agent_kwargs,
                    "policy_path": None if w.policy_path is None else str(w.policy_path),
                }
                for w in self._workers
            ],
            "step_delay": float(self.step_delay),
            "telemetry": self.telemetry.model_dump(),
            "mode": self.mode,
            "policy_path": None if self.policy_path is None else str(self.policy_path),
            "checkpoint_every": self.checkpoint_every,
        }

    # -- derived views -------------------------------------------------------------------

    def canonical_payload(self) -> dict[str, Any]:
        """Return the config as a plain JSON dict: defaults filled in, ids normalized, keys sorted.

        Returns
        -------
        dict
            What the ``runs.config`` column stores; :meth:`from_payload` reads it back.
        """
        result: dict[str, Any] = json.loads(self._canonical_json)
        return result

    @property
    def canonical_json(self) -> str:
        """The canonical payload as compact JSON text (what :attr:`digest` hashes)."""
        return self._canonical_json

    @property
    def digest(self) -> str:
        """sha256 hex of the canonical JSON; the same for equal configs in every process."""
        return self._digest

    @property
    def agent_ref(self) -> AgentRef:
        """How workers load the agent (a pickled agent carries its payload here)."""
        return self._agent_ref

    @property
    def worker_ids(self) -> list[str]:
        """The workers' normalized ids, in ``workers`` order."""
        return [w.worker_id for w in self._workers]

    @property
    def step_limit(self) -> int:
        """The resolved ``max_steps_per_episode``.

        Explicit, else the env's registered limit, else ``DEFAULT_STEP_LIMIT`` (1000).
        """
        return self._step_limit

    def worker_policies(self) -> dict[str, Path | None]:
        """Return each worker's policy file: its own ``WorkerSpec.policy_path``, else the run's.

        Returns
        -------
        dict of str to Path or None
            By worker id; None when the worker starts without a policy.
        """
        return {w.worker_id: w.policy_path for w in self._workers}

    def worker_configs(self, run_id: str = "", run_dir: str | None = None) -> list[WorkerConfig]:
        """Return one fully resolved worker config file's content per worker.

        Parameters
        ----------
        run_id : str, optional
            The run the workers belong to.
        run_dir : str, optional
            Where the workers write their artifacts (made absolute).

        Returns
        -------
        list of WorkerConfig
            In ``workers`` order; the dispatcher writes each to the run folder.
        """
        directory = None if run_dir is None else os.path.abspath(run_dir)
        return [
            WorkerConfig(
                run_id=run_id,
                worker_id=w.worker_id,
                digest=self._digest,
                name=self.name,
                env_id=self.env_id,
                env_kwargs=json.loads(json.dumps(self.env_kwargs)),
                agent=self._agent_ref,
                agent_kwargs=json.loads(json.dumps(w.agent_kwargs)),
                episodes=self.episodes,
                max_steps_per_episode=self._step_limit,
                seed=w.seed,
                step_delay=float(self.step_delay),
                telemetry=self.telemetry.to_spec(),
                mode=self.mode,
                policy_path=None if w.policy_path is None else str(w.policy_path),
                run_dir=directory,
                checkpoint_every=self.checkpoint_every,
            )
            for w in self._workers
        ]

    def worker_spec_items(self) -> list[tuple[str, WorkerSpec | None]]:
        """Return ``(worker_id, spec)`` per worker (``spec`` None for a plain id or count)."""
        return [(w.worker_id, w.spec) for w in self._workers]

    # -- identity, copies, files ---------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        """Equal configs have the same digest (the same canonical payload)."""
        if isinstance(other, TrainConfig):
            return self._digest == other._digest
        return NotImplemented

    def __hash__(self) -> int:
        """Hash the digest, so equal configs hash alike."""
        return hash(self._digest)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Return a copy; with ``update`` it is validated again, so digest and workers stay right.

        Parameters
        ----------
        update : mapping, optional
            Fields to change. A default name follows changes of ``env_id``/``agent``.
        deep : bool, optional
            Deep-copy (only without ``update``).

        Returns
        -------
        TrainConfig
            The new config.

        Raises
        ------
        pydantic.ValidationError
            ``update`` makes the config invalid.

        Examples
        --------
        >>> longer = cfg.model_copy(update={"episodes": 2000})  # doctest: +SKIP
        """
        if not update:
            return super().model_copy(deep=deep)
        data: dict[str, Any] = {key: getattr(self, key) for key in type(self).model_fields}
        if self.name == default_name(self.env_id, self.agent):
            del data["name"]  # a derived name follows env_id/agent changes
        data.update(update)
        return self.model_validate(data)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Read a ``.json`` or ``.toml`` config file written by :meth:`save` (or by hand).

        Parameters
        ----------
        path : str or PathLike
            The file; its suffix chooses the format.

        Returns
        -------
        TrainConfig
            The validated config.

        Raises
        ------
        ConfigError
            The file cannot be read or parsed, or its suffix is not ``.json``/``.toml``.
        pydantic.ValidationError
            The file's values are invalid (a note names the file).

        Examples
        --------
        >>> cfg = nbtrain.TrainConfig.load("frozenlake.toml")  # doctest: +SKIP
        """
        from nbtrain.config.files import load_data

        data = load_data(path)
        try:
            return cls.model_validate(data)
        except ValueError as exc:
            exc.add_note(f"while loading config file {os.fspath(path)}")
            raise

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], *, agent: Any = None) -> Self:
        """Rebuild the config of a past run from its :meth:`canonical_payload`.

        The payload is the JSON in the ``runs.config`` column; the result has the same digest.

        Parameters
        ----------
        payload : mapping
            A canonical payload.
        agent : class or callable, optional
            An agent defined in a notebook is stored only by name and source hash: pass the
            class or factory again here (it must be the same one).

        Returns
        -------
        TrainConfig
            The config of the run.

        Raises
        ------
        ConfigError
            The run's agent was defined in a notebook and ``agent`` was not given, or
            ``agent`` is not the one the run used.

        Examples
        --------
        >>> again = nbtrain.TrainConfig.from_payload(store.run(run_id)["config"])  # doctest: +SKIP
        """
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
        return cls.model_validate(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a ``.json`` or ``.toml`` file that :meth:`load` reads back to an equal config.

        Parameters
        ----------
        path : str or PathLike
            The file to write; its suffix chooses the format.

        Raises
        ------
        ConfigError
            The suffix is not ``.json``/``.toml``, the agent cannot be written as text (one
            defined in a notebook), or the file cannot be written.

        Examples
        --------
        >>> cfg.save("frozenlake.toml")  # doctest: +SKIP
        """
        from nbtrain.config.files import save_data

        save_data(self, path)


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
