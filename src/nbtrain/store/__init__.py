"""The SQLite telemetry store: schema and migrations, the single writer, DataFrame reads.

The public reader is :class:`TelemetryStore`. The writer (``nbtrain.store.writer``:
``acquire_writer``, ``StoreWriter``) is internal to nbtrain's dispatcher.

See docs/store.md for the tables, storage conventions and DataFrame dtypes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nbtrain.store.liveness import RunFix, patch, settle
from nbtrain.store.migrations import ensure_writable, migrate, needs_migration
from nbtrain.store.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    import pandas as pd

    from nbtrain.store.queries import Reader

# The readers (queries, frames, summary) import pandas and pyarrow, ~0.3 s: they load when
# a store is first read, not when ``launch()`` imports this package for its writer.

__all__ = [
    "SCHEMA_VERSION",
    "StoreSnapshot",
    "TelemetryStore",
    "ensure_writable",
    "migrate",
]


class _Frames:
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
        return patch(self._reader.runs(), self._settle(None), by_worker=False)

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
        return self._reader.run(run_id)

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
            into columns (see :func:`nbtrain.expand_extras`).

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
            into columns (see :func:`nbtrain.expand_extras`).

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

    return expand_extras(frame)


class StoreSnapshot(_Frames):
    """Frames read from one read transaction: they agree with each other even while runs write.

    Get one with ``with store.snapshot() as s:``; it has the read methods of
    :class:`TelemetryStore` and writes no liveness corrections.
    """

    _correct = False

    def __init__(self, reader: Reader) -> None:
        self._reader = reader


class TelemetryStore(_Frames):
    """Read a store file as DataFrames; safe while runs write to it (here or elsewhere).

    Opening an up-to-date file only reads it; a read-only one (file, folder or mount) is
    read as it is. A missing file is created empty and an older one is upgraded in place.

    Parameters
    ----------
    path : str or Path, optional
        The SQLite file; default ``nbtrain.sqlite`` in the working directory.

    Raises
    ------
    SchemaVersionError
        The file was written by a newer nbtrain.
    CorruptStoreError
        The file is not an SQLite database, or damaged.
    StoreAccessError
        A folder, a missing folder, no permission.
    ReadOnlyStoreError
        The file is older and cannot be upgraded (read-only).

    Examples
    --------
    >>> store = nbtrain.TelemetryStore("nbtrain.sqlite")  # doctest: +SKIP
    >>> store.runs().tail()  # doctest: +SKIP
    """

    def __init__(self, path: str | Path = "nbtrain.sqlite") -> None:
        self.path = Path(path).expanduser().resolve()
        if needs_migration(self.path):
            migrate(self.path)
        from nbtrain.store.queries import Reader

        self._reader = Reader(self.path)

    def __repr__(self) -> str:
        """Name the file."""
        return f"TelemetryStore({str(self.path)!r})"

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[StoreSnapshot]:
        """Read several frames from the same committed state.

        Every frame read through the snapshot comes from one read transaction, ended when
        the block ends; keep it short, it holds back WAL checkpoints.

        Yields
        ------
        StoreSnapshot
            The read methods of this store, on one transaction.

        Examples
        --------
        >>> with store.snapshot() as s:  # doctest: +SKIP
        ...     episodes, steps = s.episodes(run_id), s.steps(run_id)
        """
        with self._reader.snapshot() as reader:
            yield StoreSnapshot(reader)

    # -- retention and comparison (store.retention, store.archive, store.compare) ----------
    def delete_run(self, run_id: str) -> dict[str, int]:
        """Delete every row of a run in every table, and its run folder, in one transaction.

        Parameters
        ----------
        run_id : str
            The run's ULID.

        Returns
        -------
        dict of str to int
            Rows deleted, by table.

        Raises
        ------
        UnknownRunError
            No such run.
        RunError
            The run has live workers (stop them first).
        StoreError
            The file cannot be written (e.g. :class:`ReadOnlyStoreError`).

        Examples
        --------
        >>> store.delete_run(run_id)  # doctest: +SKIP
        """
        from nbtrain.store.retention import delete_run

        return delete_run(self, run_id)

    def archive_run(self, run_id: str, to: str | Path) -> dict[str, int]:
        """Move a run into another nbtrain database: copy, verify the counts, delete here.

        Parameters
        ----------
        run_id : str
            The run's ULID.
        to : str or Path
            The archive's SQLite file (created if needed); the run's folder goes beside it.

        Returns
        -------
        dict of str to int
            Rows moved, by table.

        Raises
        ------
        UnknownRunError
            No such run.
        RunError
            The run has live workers, or is already in the archive.
        StoreError
            The archive cannot be used (a folder, a missing folder, this file itself,
            missing columns) or a file cannot be written; nothing is lost.

        Examples
        --------
        >>> store.archive_run(run_id, "archive.sqlite")  # doctest: +SKIP
        """
        from nbtrain.store.archive import archive_run

        return archive_run(self, run_id, to)

    def disk_usage(self) -> pd.DataFrame:
        """Measure what each run and worker holds in the file.

        Returns
        -------
        pandas.DataFrame
            Per run and worker: episodes, stored steps and approximate bytes; largest first.

        Examples
        --------
        >>> store.disk_usage().head()  # doctest: +SKIP
        """
        from nbtrain.store.retention import disk_usage

        return disk_usage(self)

    def vacuum(self) -> dict[str, int]:
        """Give the free pages left by deletes back to the file system.

        Returns
        -------
        dict of str to int
            ``{"before": bytes, "after": bytes}`` of the file and its write-ahead log.

        Raises
        ------
        StoreError
            The file cannot be written or is in use by a writer.

        Examples
        --------
        >>> store.vacuum()  # doctest: +SKIP
        """
        from nbtrain.store.retention import vacuum

        return vacuum(self)

    def compare(self, run_ids: str | Sequence[str], metric: str = "total_reward") -> pd.DataFrame:
        """Put runs side by side: per episode index, the mean of ``metric`` over each run's workers.

        Parameters
        ----------
        run_ids : str or sequence of str
            The runs, each once.
        metric : {"total_reward", "length", "terminated", "truncated"}, optional
            The episode column to average.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``ep_index``, one column per run.

        Raises
        ------
        UnknownRunError
            A run id is not in the file.
        ValueError
            No run ids, a run id given twice, or an unknown metric.
        TypeError
            A run id is not a str.

        Examples
        --------
        >>> store.compare([first.run_id, second.run_id]).plot()  # doctest: +SKIP
        """
        from nbtrain.store.compare import compare

        return compare(self._reader, run_ids, metric)
