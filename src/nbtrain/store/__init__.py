"""The SQLite telemetry store: schema and migrations, the single writer, DataFrame reads.

The public reader is :class:`TelemetryStore`. The writer (``nbtrain.store.writer``:
``acquire_writer``, ``StoreWriter``) is internal to nbtrain's dispatcher.

See docs/store.md for the tables, storage conventions and DataFrame dtypes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrain.store.migrations import ensure_writable, migrate, needs_migration
from nbtrain.store.reads import FrameReads, StoreSnapshot
from nbtrain.store.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    import pandas as pd

# The readers (queries, frames, summary) import pandas and pyarrow, ~0.3 s: they load when
# a store is first read, not when ``launch()`` imports this package for its writer.

__all__ = [
    "SCHEMA_VERSION",
    "StoreSnapshot",
    "TelemetryStore",
    "ensure_writable",
    "migrate",
]


class TelemetryStore(FrameReads):
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
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a path, not {type(path).__name__}")
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
        ReadOnlyStoreError
            The run could not be deleted here after the copy (this file, its folder or the
            run folder's folder is read-only); refused before the archive is touched.
        StoreError
            The archive cannot be used (a folder, a missing folder, this file itself,
            missing columns) or a file cannot be written; nothing is lost, and what this
            call wrote beside the archive is removed.

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
