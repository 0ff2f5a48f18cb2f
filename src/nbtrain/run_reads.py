"""The read side of :class:`nbtrain.Run`: statuses, config, frames and the dashboard.

Everything here reads; in the kernel that owns the run, statuses come from its session
(already committed), elsewhere from the file (corrected for a dead owner). Control is in
:mod:`nbtrain.run_ending` (wait, stop) and :mod:`nbtrain.run` (restart, evaluate).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nbtrain.dispatch.control import stored_statuses
from nbtrain.errors import ConfigError, UnknownRunError
from nbtrain.statuses import run_status_of

if TYPE_CHECKING:
    import pandas as pd

    from nbtrain.config import TrainConfig
    from nbtrain.dispatch.session import RunSession
    from nbtrain.store import TelemetryStore

__all__ = ["RunReads"]


class RunReads:
    """What a :class:`~nbtrain.Run` reads (its attributes are set by ``Run``)."""

    run_id: str
    db: Path
    _session: RunSession | None
    _store: TelemetryStore | None

    @property
    def store(self) -> TelemetryStore:
        """The :class:`~nbtrain.TelemetryStore` of the run's database.

        Raises
        ------
        UnknownRunError
            The database file is gone.
        """
        if not self.db.exists():  # also once read: the file may have been removed since
            raise UnknownRunError(f"no database at {self.db}", run_id=self.run_id, path=self.db)
        if self._store is None:
            from nbtrain.store import TelemetryStore

            self._store = TelemetryStore(self.db)
        return self._store

    @property
    def worker_ids(self) -> list[str]:
        """The run's worker ids, e.g. ``["000001", "gpu_a"]``."""
        if self._session is not None:
            return list(self._session.statuses)
        return list(self._stored_statuses())

    def status(self) -> dict[str, str]:
        """Return each worker's status; every status shown is already committed.

        Returns
        -------
        dict of str to str
            ``{worker_id: status}``, the status one of ``pending``, ``running``,
            ``completed``, ``failed``, ``stopped`` (see :mod:`nbtrain.statuses`).

        Examples
        --------
        >>> run.status()  # doctest: +SKIP
        {'000001': 'running', '000002': 'completed'}

        Raises
        ------
        UnknownRunError
            The run has ended and is no longer in the database (deleted or archived).
        """
        session = self._session
        if session is None:
            return self._stored_statuses()
        if session.all_done.is_set() and not self._still_stored():
            raise UnknownRunError(
                f"run {self.run_id} is no longer in {self.db} (deleted or archived)",
                run_id=self.run_id,
                path=self.db,
            )
        return dict(session.statuses)

    def _still_stored(self) -> bool:
        """One plain query (no pandas: ``wait()`` returns ``status()``)."""
        import sqlite3

        from nbtrain.store.schema import read_rows

        try:
            rows = read_rows(self.db, "SELECT 1 FROM runs WHERE run_id = ?", (self.run_id,))
        except (sqlite3.Error, OSError):
            return True  # a file that cannot be read says nothing of the run; the session does
        return bool(rows)

    def _stored_statuses(self) -> dict[str, str]:
        return stored_statuses(self.store, self.run_id)

    @property
    def run_status(self) -> str:
        """The run's status, from its workers' (see :func:`nbtrain.statuses.run_status_of`).

        ``running`` while any worker may run, else ``failed`` if any failed, else
        ``stopped`` if any stopped, else ``completed``.
        """
        return run_status_of(list(self.status().values()))

    def config(self, *, agent: Any = None) -> TrainConfig:
        """Return the run's :class:`~nbtrain.TrainConfig`, rebuilt from the database.

        The result has the run's digest, e.g. to repeat the run with changes.

        Parameters
        ----------
        agent : class or callable, optional
            An agent defined in a notebook is not stored as text: pass it again here.

        Returns
        -------
        TrainConfig
            The config the run was launched with.

        Raises
        ------
        UnknownRunError
            The run is no longer in the database.
        ConfigError
            No stored config, or a notebook-defined agent not passed again.

        Examples
        --------
        >>> again = nbtrain.launch(run.config().model_copy(update={"seed": 1}))  # doctest: +SKIP
        """
        import json

        from nbtrain.config import TrainConfig

        payload = self.store.run(self.run_id)["config"]
        if isinstance(payload, str):
            payload = json.loads(payload)
        if not isinstance(payload, dict):
            raise ConfigError(f"run {self.run_id} has no stored config in {self.db}")
        return TrainConfig.from_payload(payload, agent=agent)

    def episodes(
        self,
        worker_id: object | None = None,
        columns: list[str] | None = None,
        *,
        extras: Literal["json", "columns"] = "json",
    ) -> pd.DataFrame:
        """Read the run's finished episodes.

        Parameters
        ----------
        worker_id : worker id or list of them, optional
            Only these workers (``1``, ``"w1"``, ``"000001"`` and ``"gpu_a"`` all work).
        columns : list of str, optional
            Only these columns, in this order (see docs/store.md).
        extras : {"json", "columns"}, optional
            ``"columns"`` turns the keys of the JSON ``extras`` into columns (a key that is
            also a column's name becomes ``extras_<key>``).

        Returns
        -------
        pandas.DataFrame
            One row per episode: ``worker_id``, ``ep_index``, ``total_reward``, ``length``,
            ``terminated``, ``truncated``, ...

        Raises
        ------
        UnknownWorkerError
            A worker id not in the run.
        ValueError
            An unknown column.

        Examples
        --------
        >>> run.episodes(worker_id=1, columns=["ep_index", "total_reward"])  # doctest: +SKIP
        """
        return self.store.episodes(self.run_id, worker_id=worker_id, columns=columns, extras=extras)

    def steps(
        self,
        worker_id: object | None = None,
        ep_index: int | None = None,
        columns: list[str] | None = None,
        *,
        extras: Literal["json", "columns"] = "json",
    ) -> pd.DataFrame:
        """Read the run's recorded steps.

        Parameters
        ----------
        worker_id : worker id or list of them, optional
            Only these workers.
        ep_index : int or list of int, optional
            Only these episode indexes.
        columns : list of str, optional
            Only these columns, in this order (see docs/store.md).
        extras : {"json", "columns"}, optional
            ``"columns"`` turns the keys of the JSON ``extras`` (e.g. ``epsilon``) into
            columns; the default keeps the text, which is faster to read.

        Returns
        -------
        pandas.DataFrame
            One row per recorded step: ``worker_id``, ``ep_index``, ``step_index``,
            ``action``, ``reward``, ``obs``, ``extras``, ...

        Raises
        ------
        UnknownWorkerError
            A worker id not in the run.
        ValueError
            An unknown column, or ``extras="columns"`` without the ``extras`` column.

        Examples
        --------
        >>> run.steps(worker_id=1, ep_index=299, extras="columns")["epsilon"]  # doctest: +SKIP
        """
        return self.store.steps(
            self.run_id, worker_id=worker_id, ep_index=ep_index, columns=columns, extras=extras
        )

    def summary(self) -> pd.DataFrame:
        """Summarize each worker (see docs/store.md for the definitions).

        Returns
        -------
        pandas.DataFrame
            Exactly one row per worker: status, exit code, episodes, steps, returns,
            success rate, wall time.

        Examples
        --------
        >>> run.summary()[["worker_id", "status", "mean_return"]]  # doctest: +SKIP
        """
        return self.store.run_summary(self.run_id)

    def aggregate(self, metric: str = "total_reward") -> pd.DataFrame:
        """Aggregate an episode metric across the workers, per episode index.

        Parameters
        ----------
        metric : {"total_reward", "length", "terminated", "truncated"}, optional
            The episode column.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``ep_index``: ``mean``, ``sd``, ``iqm``, ``min``, ``max``,
            ``n_workers``.

        Raises
        ------
        ValueError
            ``metric`` is not one of the four.

        Examples
        --------
        >>> run.aggregate()["mean"].plot()  # doctest: +SKIP
        """
        return self.store.aggregate(self.run_id, metric=metric)
