"""``nbtrain.launch`` and ``nbtrain.Run``: a run, owned by this kernel or by another process.

The database is the run's truth. In the kernel that owns the run, :class:`Run` reads the
statuses its session has already committed; anywhere else (another notebook, the CLI, a new
kernel after a restart) it reads the rows, corrected for a dead owner
(:mod:`nbtrain.store.liveness`), and controls the run through them: a stop request is a row
the owner acts on; a restart is allowed once the owner is gone, and makes the caller the owner.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrain.dispatch.control import (
    open_db,
    stored_agent,
    stored_worker_config,
    take_over,
)
from nbtrain.dispatch.registry import live_session
from nbtrain.dispatch.session import RunSession
from nbtrain.dispatch.start import DEFAULT_DB, coerce_config, start_run
from nbtrain.errors import RunError, StoreError, UnknownRunError
from nbtrain.ids import check_run_id, normalize_worker_id
from nbtrain.run_ending import RunEnding

if TYPE_CHECKING:
    from nbtrain.config import TrainConfig
    from nbtrain.dispatch.backend import Backend
    from nbtrain.store import TelemetryStore


def launch(
    config: TrainConfig | Mapping[str, Any] | str | os.PathLike[str],
    db: str | os.PathLike[str] = DEFAULT_DB,
    *,
    backend: str | Backend | None = None,
) -> Run:
    """Start a run in the background and return its :class:`~nbtrain.Run` at once.

    Parameters
    ----------
    config : TrainConfig, mapping or path
        A :class:`~nbtrain.TrainConfig`, a dict of its fields, or the path of a saved one.
    db : str or PathLike, optional
        The SQLite file (created if missing; its folder must exist).
    backend : str or Backend, optional
        ``"local"`` (default: subprocesses over pipes), ``"ray"``, or a backend instance
        such as ``nbtrain.RayBackend(address=...)``.

    Raises
    ------
    pydantic.ValidationError
        The config is invalid (nothing is created).
    StoreError
        The database cannot be used (nothing is created).
    RunError
        A worker could not be started; the run is recorded ``failed`` and its id named.

    Returns
    -------
    Run
        The new run; its workers start in the background.

    Examples
    --------
    >>> cfg = nbtrain.TrainConfig(env_id="FrozenLake-v1", episodes=100)
    >>> run = nbtrain.launch(cfg)  # doctest: +SKIP
    >>> run.wait()  # doctest: +SKIP
    """
    return Run._from_session(start_run(coerce_config(config), db, backend))


class Run(RunEnding):
    """Handle on a run: read its telemetry, wait for it, stop, restart or evaluate it.

    Made by :func:`nbtrain.launch` or :meth:`Run.open`; not constructed directly.

    Attributes
    ----------
    run_id : str
        The run's ULID.
    db : Path
        The absolute path of its SQLite file.

    Examples
    --------
    >>> run = nbtrain.launch({"env_id": "FrozenLake-v1", "episodes": 300})  # doctest: +SKIP
    >>> run.wait(raise_on_failure=True)  # doctest: +SKIP
    {'000001': 'completed'}
    >>> run.episodes()["total_reward"].mean()  # doctest: +SKIP
    """

    def __init__(self, run_id: str, db: Path, session: RunSession | None) -> None:
        self.run_id = run_id
        self.db = db
        self._session = session
        self._store: TelemetryStore | None = None

    @classmethod
    def _from_session(cls, session: RunSession) -> Run:
        return cls(session.run_id, session.db_path, session)

    @classmethod
    def open(cls, run_id: str, db: str | os.PathLike[str] = DEFAULT_DB) -> Run:
        """Open a past or running run, also after a kernel restart or from another process.

        Parameters
        ----------
        run_id : str
            The run's ULID (``nbtrain runs`` lists them).
        db : str or PathLike, optional
            Its SQLite file.

        Returns
        -------
        Run
            The run; in the kernel that owns it, the same live state as ``launch`` gave.

        Raises
        ------
        UnknownRunError
            No such run in ``db`` (the nearest ids are listed), or no file at ``db``.
        StoreError
            ``db`` is not a readable nbtrain database.

        Examples
        --------
        >>> run = nbtrain.Run.open("01HZX3N5V0A8B9C7D6E5F4G3H2")  # doctest: +SKIP
        """
        check_run_id(run_id)
        db_path = open_db(db)
        session = live_session(run_id, db_path)
        run = cls(run_id, db_path, session)
        try:
            run.store.workers(run_id)  # raises UnknownRunError early
        except UnknownRunError:
            raise  # also for a session of this process whose run was deleted or archived
        except StoreError:
            if session is None:
                raise  # the owner's session holds what a failing database could not take
        return run

    def dashboard(self) -> Any:
        """Make a live widget for the run, with one tab per worker.

        Returns
        -------
        RunDashboard
            Display it as a cell's last expression.

        Examples
        --------
        >>> run.dashboard()  # doctest: +SKIP
        """
        from nbtrain.widgets import RunDashboard

        return RunDashboard(self)

    # -- control ---------------------------------------------------------------------------
    def restart(self, worker_id: object) -> None:
        """Relaunch a stopped or failed worker.

        Its episodes continue where they stopped and it resumes learning from its last
        checkpoint.

        From another process this is allowed only once the owning kernel is gone (this
        process then owns the run).

        Parameters
        ----------
        worker_id : worker id
            The worker to restart.

        Raises
        ------
        UnknownWorkerError
            ``worker_id`` is not a worker of the run.
        RunError
            The worker still runs, or another live kernel owns the run (named).

        Examples
        --------
        >>> run.restart(2)  # doctest: +SKIP
        """
        wid = normalize_worker_id(worker_id)
        session = self._session
        if session is None:
            # checks the worker before it claims the run
            session = self._session = take_over(self.db, self.run_id, wid)
        session.check_restartable(wid)  # before anything of it is discarded
        config = stored_worker_config(self.db, self.run_id, wid, session.run_dir)
        writer = session.writer()
        writer.flush()
        next_episode = writer.discard_unfinished_steps(self.run_id, wid)
        session.prepare_restart(wid, config, next_episode)
        session.start(wid)

    def evaluate(self, episodes: int = 100, worker_id: object | None = None) -> Run:
        """Launch an eval run: each worker's saved policy played greedily.

        Each eval worker keeps its training worker's id and seed, so its episodes start from
        the same reset seeds as the training episodes of the same index.

        Parameters
        ----------
        episodes : int, optional
            Episodes per eval worker.
        worker_id : worker id, optional
            Evaluate only this worker's policy; None: every worker's.

        Returns
        -------
        Run
            The new run (mode ``eval``, a worker of the same id per policy), at once.

        Raises
        ------
        UnknownWorkerError
            ``worker_id`` is not a worker of the run.
        RunError
            A worker has no saved policy (its agent cannot save, or it ended no episode).

        Examples
        --------
        >>> scores = run.evaluate(episodes=100).wait()  # doctest: +SKIP
        """
        from nbtrain.config import evaluation_config

        wids = self.worker_ids if worker_id is None else [normalize_worker_id(worker_id)]
        for wid in wids:
            if wid not in self.status():
                raise self._unknown_worker(wid)
        run_dir = self.db.parent / "nbtrain-runs" / self.run_id
        policies: dict[object, Path] = {}
        for wid in wids:
            found = sorted(run_dir.glob(f"policy-{wid}.*"))
            if not found:
                raise RunError(
                    f"worker {wid!r} of run {self.run_id} has no saved policy in {run_dir} "
                    f"({self._why_no_policy(wid)})"
                )
            policies[wid] = found[0]
        # a notebook-defined agent comes from the run's own row, as for a restart
        config = evaluation_config(
            self.config(agent=stored_agent(self.db, self.run_id)), policies, episodes
        )
        return launch(config, db=self.db)

    def _why_no_policy(self, wid: str) -> str:
        # The stored payload as it is: rebuilding the config could fail and hide this error.
        payload = self.store.run(self.run_id)["config"]
        config = json.loads(payload) if isinstance(payload, str) else payload
        if not isinstance(config, dict):
            config = {}
        if config.get("mode") == "eval":
            return "an eval run plays a policy and saves none; evaluate the run that trained it"
        if self.status()[wid] in ("pending", "running"):
            return (
                f"it is still running and has saved no checkpoint yet (checkpoint_every="
                f"{config.get('checkpoint_every')}); evaluate once it has, or when it ends"
            )
        return "its agent has no save(), or it ended no episode"

    def __repr__(self) -> str:
        """Show the id, the workers and the run's status."""
        return (
            f"Run(run_id={self.run_id!r}, workers={self.worker_ids!r}, status={self.run_status!r})"
        )


__all__ = ["Run", "launch"]
