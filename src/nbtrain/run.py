"""``nbtrain.launch`` and ``nbtrain.Run``: a run, owned by this kernel or by another process.

The database is the run's truth. In the kernel that owns the run, :class:`Run` reads the
statuses its session has already committed; anywhere else (another notebook, the CLI, a new
kernel after a restart) it reads the rows, corrected for a dead owner
(:mod:`nbtrain.store.liveness`), and controls the run through them: a stop request is a row
the owner acts on; a restart is allowed once the owner is gone, and makes the caller the owner.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrain.dispatch.control import (
    DEFAULT_DB,
    open_db,
    request_stop,
    stored_worker_config,
    take_over,
)
from nbtrain.dispatch.session import FINAL_STATUSES, RunSession, live_session
from nbtrain.dispatch.start import coerce_config, start_run
from nbtrain.errors import (
    ConfigError,
    RunError,
    StoreError,
    UnknownRunError,
    UnknownWorkerError,
    WorkerFailedError,
)
from nbtrain.ids import check_run_id, normalize_worker_id
from nbtrain.store.liveness import run_status_of

if TYPE_CHECKING:
    import pandas as pd

    from nbtrain.config import TrainConfig
    from nbtrain.dispatch.backend import Backend
    from nbtrain.store import TelemetryStore

# How often a Run that does not own its run polls the database in wait()/stop().
POLL_S = 0.1


def _process_ui_events() -> None:
    try:
        from nbtrain.jupyter_events import process_ui_events
    except ImportError:
        return
    process_ui_events()


def launch(
    config: TrainConfig | Mapping[str, Any] | str | os.PathLike[str],
    db: str | os.PathLike[str] = DEFAULT_DB,
    *,
    backend: str | Backend | None = None,
) -> Run:
    """Start a run in the background and return its :class:`~nbtrain.Run` at once.

    Parameters
    ----------
    config:
        A :class:`~nbtrain.TrainConfig`, a dict of its fields, or the path of a saved one.
    db:
        The SQLite file (created if missing; its folder must exist).
    backend:
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

    Example
    -------
    >>> run = nbtrain.launch(nbtrain.TrainConfig(env_id="FrozenLake-v1", episodes=100))
    >>> run.wait()  # doctest: +SKIP
    """
    return Run._from_session(start_run(coerce_config(config), db, backend))


class Run:
    """Handle on a run. Made by :func:`nbtrain.launch` or :meth:`Run.open`.

    Attributes
    ----------
    run_id:
        The run's ULID.
    db:
        The absolute path of its SQLite file.
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
        """A past or running run, also after a kernel restart or from another process.

        Raises
        ------
        UnknownRunError
            No such run in ``db`` (the nearest ids are listed), or no file at ``db``.
        StoreError
            ``db`` is not a readable nbtrain database.
        """
        check_run_id(run_id)
        db_path = open_db(db)
        session = live_session(run_id, db_path)
        run = cls(run_id, db_path, session)
        if session is None:
            run.store.workers(run_id)  # raises UnknownRunError early
        return run

    # -- reading ---------------------------------------------------------------------------
    @property
    def store(self) -> TelemetryStore:
        """The :class:`~nbtrain.TelemetryStore` of the run's database."""
        if self._store is None:
            from nbtrain.store import TelemetryStore

            if not self.db.exists():
                raise UnknownRunError(f"no database at {self.db}")
            self._store = TelemetryStore(self.db)
        return self._store

    @property
    def worker_ids(self) -> list[str]:
        """The run's worker ids, e.g. ``["000001", "gpu_a"]``."""
        if self._session is not None:
            return list(self._session.statuses)
        return [str(w) for w in self.store.workers(self.run_id)["worker_id"]]

    def status(self) -> dict[str, str]:
        """``{worker_id: status}``; every status shown is already committed to the database."""
        if self._session is not None:
            return dict(self._session.statuses)
        frame = self.store.workers(self.run_id)
        return {str(w): str(s) for w, s in zip(frame["worker_id"], frame["status"], strict=True)}

    @property
    def run_status(self) -> str:
        """``running``, else ``failed`` if any worker failed, else ``stopped``, else
        ``completed``."""
        return run_status_of(list(self.status().values()))

    def config(self, *, agent: Any = None) -> TrainConfig:
        """The run's :class:`~nbtrain.TrainConfig`, rebuilt from the database (same digest),
        e.g. to repeat it with ``nbtrain.TrainForm.from_config(run.config())``. A notebook-
        defined agent is not stored as text: pass it again as ``agent``."""
        import json

        from nbtrain.config import TrainConfig

        runs = self.store.runs()
        row = runs[runs["run_id"] == self.run_id]
        if row.empty:
            raise UnknownRunError(f"no run {self.run_id!r} in {self.db}")
        payload = row["config"].iloc[0]
        if isinstance(payload, str):
            payload = json.loads(payload)
        if not isinstance(payload, dict):
            raise ConfigError(f"run {self.run_id} has no stored config in {self.db}")
        return TrainConfig.from_payload(payload, agent=agent)

    def episodes(
        self, worker_id: object | None = None, columns: list[str] | None = None
    ) -> pd.DataFrame:
        """One row per finished episode (of one worker id or a list of them)."""
        return self.store.episodes(self.run_id, worker_id=worker_id, columns=columns)

    def steps(
        self,
        worker_id: object | None = None,
        ep_index: int | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """One row per recorded step (of some workers and some episode indexes)."""
        return self.store.steps(
            self.run_id, worker_id=worker_id, ep_index=ep_index, columns=columns
        )

    def summary(self) -> pd.DataFrame:
        """Exactly one row per worker: status, exit code, episodes, steps, returns, time."""
        return self.store.run_summary(self.run_id)

    def aggregate(self, metric: str = "total_reward") -> pd.DataFrame:
        """Per episode index across workers: mean, sd, IQM, min, max, n_workers."""
        return self.store.aggregate(self.run_id, metric=metric)

    def dashboard(self) -> Any:
        """A live widget with one tab per worker."""
        from nbtrain.widgets import RunDashboard

        return RunDashboard(self)

    # -- control ---------------------------------------------------------------------------
    def wait(
        self, timeout: float | None = None, *, raise_on_failure: bool = False
    ) -> dict[str, str]:
        """Block until every worker has exited and its telemetry is committed; return the
        statuses. ``raise_on_failure=True`` then calls :meth:`raise_for_failures`.

        Raises
        ------
        TimeoutError
            Still running after ``timeout`` seconds (the workers go on).
        StoreError
            The database could not be written; the workers were stopped and failed.
        KeyboardInterrupt
            After stopping the workers (they end ``stopped``).
        WorkerFailedError
            With ``raise_on_failure=True``, when any worker failed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        session = self._session
        try:
            while not self._finished(session):
                if session is not None:
                    session.all_done.wait(0.05)
                    _process_ui_events()
                else:
                    time.sleep(POLL_S)
                if deadline is not None and time.monotonic() >= deadline:
                    if self._finished(session):
                        break
                    raise TimeoutError(
                        f"run {self.run_id} still running after {timeout} s: {self.status()}"
                    )
        except KeyboardInterrupt:
            self.stop()
            raise
        if session is not None and session.store_failure is not None:
            failure = session.store_failure
            raise StoreError(
                f"run {self.run_id}: the database {self.db} could not be written ({failure}); "
                f"its workers were stopped: {self.status()}"
            ) from failure
        if raise_on_failure:
            self.raise_for_failures()
        return self.status()

    def _finished(self, session: RunSession | None) -> bool:
        if session is not None:
            return session.all_done.is_set()
        return all(s in FINAL_STATUSES for s in self.status().values())

    def stop(self, worker_id: object | None = None, timeout: float = 10) -> dict[str, str]:
        """Stop one worker or all; returns once they are reaped and their telemetry committed.

        From a process that does not own the run, the request goes through the database to
        the owning kernel, and this returns once the database says the workers ended.
        """
        wid = None if worker_id is None else normalize_worker_id(worker_id)
        session = self._session
        if session is not None:
            session.stop(wid, timeout)
            return self.status()
        statuses = self.status()
        if wid is not None and wid not in statuses:
            raise self._unknown_worker(wid)
        targets = [w for w, s in statuses.items() if s not in FINAL_STATUSES]
        if wid is not None:
            targets = [wid] if wid in targets else []
        if not targets:
            return statuses
        request_stop(self.db, self.run_id, targets)
        deadline = time.monotonic() + timeout + 5.0
        while time.monotonic() < deadline:
            statuses = self.status()
            if all(statuses[w] in FINAL_STATUSES for w in targets):
                return statuses
            time.sleep(POLL_S)
        raise TimeoutError(
            f"run {self.run_id}: workers {targets} did not stop within {timeout} s "
            f"(the kernel that owns the run did not act on the request): {statuses}"
        )

    def restart(self, worker_id: object) -> None:
        """Relaunch a stopped or failed worker; its episodes continue where they stopped and
        it resumes learning from its last checkpoint.

        From another process this is allowed only once the owning kernel is gone (this
        process then owns the run); otherwise ``RunError`` names the owner.
        """
        wid = normalize_worker_id(worker_id)
        session = self._session
        if session is None:
            session = self._session = take_over(self.db, self.run_id)
        session.check_worker(wid)
        config = stored_worker_config(self.db, self.run_id, wid, session.run_dir)
        writer = session.writer()
        writer.flush()
        next_episode = writer.discard_unfinished_steps(self.run_id, wid)
        session.prepare_restart(wid, config, next_episode)
        session.start(wid)

    def evaluate(self, episodes: int = 100, worker_id: object | None = None) -> Run:
        """A new eval run: each worker's saved policy played greedily by a worker of the same
        id, for ``episodes`` episodes. Returns the new run at once."""
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
                    "(its agent has no save(), or it never ended an episode)"
                )
            policies[wid] = found[0]
        config = evaluation_config(self.config(), policies, episodes)
        return launch(config, db=self.db)

    def raise_for_failures(self) -> None:
        """Raise :class:`~nbtrain.errors.WorkerFailedError` if any worker failed, carrying
        each failed worker's error line and traceback; do nothing otherwise.

        Example
        -------
        >>> run.wait()  # doctest: +SKIP
        >>> run.raise_for_failures()  # doctest: +SKIP
        """
        frame = self.store.workers(self.run_id)
        failed = frame[frame["status"] == "failed"]
        if failed.empty:
            return
        errors = {
            str(w): _text(e) for w, e in zip(failed["worker_id"], failed["error"], strict=True)
        }
        tracebacks = {
            str(w): _text(t) for w, t in zip(failed["worker_id"], failed["traceback"], strict=True)
        }
        raise WorkerFailedError(self.run_id, errors, tracebacks)

    def _unknown_worker(self, wid: str) -> Exception:
        return UnknownWorkerError(self.run_id, wid, self.worker_ids)

    def __repr__(self) -> str:
        return (
            f"Run(run_id={self.run_id!r}, workers={self.worker_ids!r}, status={self.run_status!r})"
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


__all__ = ["FINAL_STATUSES", "Run", "launch"]
