"""``TrainConfig``: the validated run config, its canonical payload and digest.

The config's public API is here. Its fields and the checks on each are its base class,
:class:`~nbtrain.config.fields.TrainFields`; what the fields resolve to, and the canonical
payload and digest computed from that, are :mod:`nbtrain.config.canonical`'s part.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from pydantic import PrivateAttr, model_validator

from nbtrain.config.canonical import payload_fields, resolve
from nbtrain.config.fields import TrainFields
from nbtrain.config.fields import default_name as default_name
from nbtrain.config.parts import TelemetryConfig, WorkerSpec
from nbtrain.config.workers import ResolvedWorker
from nbtrain.worker.config_file import AgentRef, WorkerConfig

__all__ = ["TelemetryConfig", "TrainConfig", "WorkerSpec"]


class TrainConfig(TrainFields):
    """A validated run config: what to train, with which agent, on how many workers.

    Equal configs (same canonical payload) have the same :attr:`digest`. The model is
    frozen, down to the dicts and lists inside it (changing one in place raises
    ``TypeError``); change a copy with :meth:`model_copy` (``update=``), which validates
    again.

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

    _agent_ref: AgentRef = PrivateAttr()
    _run_kwargs: dict[str, Any] = PrivateAttr()
    _workers: tuple[ResolvedWorker, ...] = PrivateAttr()
    _step_limit: int = PrivateAttr()
    _canonical_json: str = PrivateAttr()
    _digest: str = PrivateAttr()

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        resolved = resolve(self)
        self._workers = resolved.workers
        self._step_limit = resolved.step_limit
        self._agent_ref = resolved.agent_ref
        self._run_kwargs = resolved.run_kwargs
        self._canonical_json = resolved.canonical_json
        self._digest = resolved.digest
        return self

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
        """sha256 hex of the canonical JSON; the same for equal configs in every process.

        ``agent_kwargs`` enter it as given: ``{"alpha": 0.1}`` (the default spelled out)
        and ``{}`` are different configs by their digest, though they train alike.
        """
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
        return cls.model_validate(payload_fields(payload, agent))

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
