"""The read API that :class:`~nbtrain.TelemetryStore` and its snapshots share: runs,
workers, episodes, steps, summaries, each a DataFrame.

Statuses are read through :mod:`nbtrain.store.liveness`, so a run whose kernel died shows
``failed`` (a store writes that correction; a snapshot, inside its read transaction, does
not). pandas is imported when a frame is first read, not when this module is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from nbtrain.store.liveness import RunFix, patch, settle

if TYPE_CHECKING:
    import pandas as pd

    from nbtrain.store.queries import Reader

__all__ = ["FrameReads", "StoreSnapshot"]


class FrameReads:
    """The read API shared by a store and a snapshot of it."""

    _reader: Reader
    _correct: bool = True  # write liveness corrections (not from inside a snapshot)

    def _settle(self, run_id: str | None) -> list[RunFix]:
        return settle(self._reader.path, run_id, write=self._correct)

    def runs(self) -> pd.DataFrame:
        """List every run, oldest first.

        Runs whose kernel died are shown ``failed`` (see :mod:`nbtrain.store.liveness`).

        Returns
        -------
        pandas.DataFrame
            One row per run: the stored columns (``run_id``, ``name``, ``created_at``,
            ``digest``, ``config``, ``status``, ...) then ``env_id``, ``agent``, ``mode``
            and ``n_workers`` read from its config.

        Examples
        --------
        >>> store.runs()[["run_id", "name", "status"]]  # doctest: +SKIP
        """
        fixes = self._settle(None)  # first: the frame read after it shows what it wrote
        return patch(self._reader.runs(), fixes, by_worker=False)

    def run(self, run_id: str) -> dict[str, Any]:
        """Return one run's record.

        Parameters
        ----------
        run_id : str
            The run's ULID.

        Returns
        -------
        dict
            The :meth:`runs` columns (``created_at`` a UTC ``Timestamp``, ``config`` a dict)
            and the owner's lease (``owner_pid``, ``owner_start``, ``owner_host``,
            ``lease_at``).

        Raises
        ------
        UnknownRunError
            No such run; the message names the closest ids.

        Examples
        --------
        >>> store.run(run_id)["status"]  # doctest: +SKIP
        'completed'
        """
        fixes = self._settle(run_id)
        record = self._reader.run(run_id)
        for fix in fixes:
            if not fix.written and fix.run_id == record.get("run_id"):
                record["status"] = fix.run_status
        return record

    def workers(self, run_id: str) -> pd.DataFrame:
        """List the workers of a run.

        Parameters
        ----------
        run_id : str
            The run's ULID.

        Returns
        -------
        pandas.DataFrame
            One row per worker: ``worker_id``, ``status``, ``pid``, ``exit_code``,
            ``error``, ``started_at``, ``ended_at``, ``traceback``, ... A worker whose
            kernel died is shown ``failed`` with the reason.

        Raises
        ------
        UnknownRunError
            No such run.
        """
        fixes = self._settle(run_id)
        return patch(self._reader.workers(run_id), fixes, by_worker=True)

    def episodes(
        self,
        run_id: str | None = None,
        worker_id: object = None,
        columns: str | Sequence[str] | None = None,
        *,
        extras: Literal["json", "columns"] = "json",
    ) -> pd.DataFrame:
        """Read finished episodes.

        Parameters
        ----------
        run_id : str, optional
            One run; None: every run in the file.
        worker_id : worker id or list of them, optional
            Only these workers (any spelling :func:`nbtrain.normalize_worker_id` accepts).
        columns : str or list of str, optional
            Only these columns, in this order (see docs/store.md for the names and dtypes).
        extras : {"json", "columns"}, optional
            ``"json"`` (default) keeps ``extras`` as JSON text; ``"columns"`` turns its keys
            into columns (see :func:`nbtrain.expand_extras`; a key that is also a column's
            name becomes ``extras_<key>``).

        Returns
        -------
        pandas.DataFrame
            One row per episode, ordered by run, worker and ``ep_index``.

        Raises
        ------
        UnknownRunError, UnknownWorkerError
            No such run, or no such worker in it.
        ValueError
            An unknown column, or ``extras="columns"`` without the ``extras`` column.

        Examples
        --------
        >>> store.episodes(run_id, worker_id=1, columns=["ep_index", "total_reward"])
        ... # doctest: +SKIP
        """
        frame = self._reader.episodes(run_id, worker_id, columns)
        return _with_extras(frame, extras)

    def steps(
        self,
        run_id: str,
        worker_id: object = None,
        ep_index: object = None,
        columns: str | Sequence[str] | None = None,
        *,
        extras: Literal["json", "columns"] = "json",
    ) -> pd.DataFrame:
        """Read the recorded steps of a run.

        Parameters
        ----------
        run_id : str
            The run's ULID.
        worker_id : worker id or list of them, optional
            Only these workers.
        ep_index : int or list of int, optional
            Only these episode indexes.
        columns : str or list of str, optional
            Only these columns, in this order (see docs/store.md).
        extras : {"json", "columns"}, optional
            ``"json"`` (default) keeps ``extras`` as JSON text; ``"columns"`` turns its keys
            into columns (see :func:`nbtrain.expand_extras`; a key that is also a column's
            name becomes ``extras_<key>``).

        Returns
        -------
        pandas.DataFrame
            One row per recorded step, ordered by worker, episode and step.

        Raises
        ------
        UnknownRunError, UnknownWorkerError
            No such run, or no such worker in it.
        ValueError
            An unknown column, or ``extras="columns"`` without the ``extras`` column.

        Examples
        --------
        >>> store.steps(run_id, worker_id=1, ep_index=0, extras="columns")  # doctest: +SKIP
        """
        frame = self._reader.steps(run_id, worker_id, ep_index, columns)
        return _with_extras(frame, extras)

    def run_summary(self, run_id: str) -> pd.DataFrame:
        """Summarize each worker of a run (see docs/store.md for the definitions).

        Parameters
        ----------
        run_id : str
            The run's ULID.

        Returns
        -------
        pandas.DataFrame
            Exactly one row per worker: status, exit code, episodes, steps, returns,
            success rate, wall time.

        Raises
        ------
        UnknownRunError
            No such run.
        """
        from nbtrain.store.summary import run_summary

        fixes = self._settle(run_id)
        return patch(run_summary(self._reader, run_id), fixes, by_worker=True)

    def aggregate(self, run_id: str, metric: str = "total_reward") -> pd.DataFrame:
        """Aggregate an episode metric across a run's workers, per episode index.

        Parameters
        ----------
        run_id : str
            The run's ULID.
        metric : {"total_reward", "length", "terminated", "truncated"}, optional
            The episode column to aggregate.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``ep_index``: ``mean``, ``sd`` (sample), ``iqm``, ``min``, ``max``,
            ``n_workers``.

        Raises
        ------
        UnknownRunError
            No such run.
        ValueError
            ``metric`` is not one of the four.

        Examples
        --------
        >>> store.aggregate(run_id)["mean"].rolling(50).mean().plot()  # doctest: +SKIP
        """
        from nbtrain.store.summary import aggregate

        return aggregate(self._reader, run_id, metric)


def _with_extras(frame: pd.DataFrame, extras: str) -> pd.DataFrame:
    if extras == "json":
        return frame
    if extras != "columns":
        raise ValueError(f"extras must be 'json' or 'columns', not {extras!r}")
    if "extras" not in frame.columns:
        raise ValueError("extras='columns' needs the 'extras' column; add it to columns=")
    from nbtrain.store.frames import expand_extras

    return expand_extras(frame, rename_clashes=True)


class StoreSnapshot(FrameReads):
    """Frames read from one read transaction: they agree with each other even while runs write.

    Get one with ``with store.snapshot() as s:``; it has the read methods of
    :class:`TelemetryStore` and writes no liveness corrections.
    """

    _correct = False

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
