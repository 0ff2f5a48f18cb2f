"""The SQLite telemetry store: schema and migrations, the single writer, DataFrame reads.

See docs/store.md for the tables, storage conventions and DataFrame dtypes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nbtrain.store.liveness import RunFix, patch, settle
from nbtrain.store.migrations import ensure_writable, migrate, needs_migration
from nbtrain.store.queries import Reader
from nbtrain.store.schema import SCHEMA_VERSION
from nbtrain.store.summary import aggregate as _aggregate
from nbtrain.store.summary import run_summary as _run_summary
from nbtrain.store.writer import StoreWriter, acquire_writer

__all__ = [
    "SCHEMA_VERSION",
    "StoreSnapshot",
    "StoreWriter",
    "TelemetryStore",
    "acquire_writer",
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
        """Every run, oldest first; ``env_id, agent, mode, n_workers`` come from its config.
        Runs whose kernel died are shown ``failed`` (see :mod:`nbtrain.store.liveness`)."""
        return patch(self._reader.runs(), self._settle(None), by_worker=False)

    def run(self, run_id: str) -> dict[str, Any]:
        """The run's record (``runs()`` columns and the owner's lease); ``UnknownRunError``
        names the closest ids when there is no such run."""
        return self._reader.run(run_id)

    def workers(self, run_id: str) -> pd.DataFrame:
        """One row per worker of the run: status, pid, exit code, error, times."""
        fixes = self._settle(run_id)
        return patch(self._reader.workers(run_id), fixes, by_worker=True)

    def episodes(
        self,
        run_id: str | None = None,
        worker_id: object = None,
        columns: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Episodes, optionally of one run and one worker id or a list of them."""
        return self._reader.episodes(run_id, worker_id, columns)

    def steps(
        self,
        run_id: str,
        worker_id: object = None,
        ep_index: object = None,
        columns: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Steps of a run, optionally of some workers and some episode indexes."""
        return self._reader.steps(run_id, worker_id, ep_index, columns)

    def run_summary(self, run_id: str) -> pd.DataFrame:
        """Exactly one row per worker (see docs/store.md for the definitions)."""
        fixes = self._settle(run_id)
        return patch(_run_summary(self._reader, run_id), fixes, by_worker=True)

    def aggregate(self, run_id: str, metric: str = "total_reward") -> pd.DataFrame:
        return _aggregate(self._reader, run_id, metric)


class StoreSnapshot(_Frames):
    """Frames read from one read transaction: they agree with each other even while runs
    write (get one with ``with store.snapshot() as s:``)."""

    _correct = False

    def __init__(self, reader: Reader) -> None:
        self._reader = reader


class TelemetryStore(_Frames):
    """Read a store file as DataFrames; safe while runs write to it (here or elsewhere).

    Opening an up-to-date file only reads it; a read-only one (file, folder or mount) is
    read as it is. A missing file is created empty and an older one is upgraded in place.
    A file that cannot be used raises a :class:`~nbtrain.errors.StoreError` subclass naming
    it: ``SchemaVersionError`` (newer nbtrain), ``CorruptStoreError``, ``StoreAccessError``
    (a folder, no permission), ``ReadOnlyStoreError`` (older and cannot be upgraded).
    """

    def __init__(self, path: str | Path = "nbtrain.sqlite") -> None:
        self.path = Path(path).expanduser().resolve()
        if needs_migration(self.path):
            migrate(self.path)
        self._reader = Reader(self.path)

    def __repr__(self) -> str:
        return f"TelemetryStore({str(self.path)!r})"

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[StoreSnapshot]:
        """``with store.snapshot() as s: s.episodes(...); s.steps(...)``: every frame read
        through ``s`` comes from the same committed state (one read transaction, ended when
        the block ends; keep it short, it holds back WAL checkpoints)."""
        with self._reader.snapshot() as reader:
            yield StoreSnapshot(reader)

    # -- retention and comparison (nbtrain.store.retention, nbtrain.store.compare) ----------
    def delete_run(self, run_id: str) -> dict[str, int]:
        """Delete every row of the run in every table, and its run folder, in one
        transaction; returns ``{table: rows deleted}``. A run with live workers: RunError."""
        from nbtrain.store.retention import delete_run

        return delete_run(self, run_id)

    def archive_run(self, run_id: str, to: str | Path) -> dict[str, int]:
        """Move the run into the nbtrain database ``to`` (created if needed; its folder goes
        beside it): copy, verify the counts, then delete here. Returns ``{table: rows}``."""
        from nbtrain.store.retention import archive_run

        return archive_run(self, run_id, to)

    def disk_usage(self) -> pd.DataFrame:
        """Per run and worker: episodes, stored steps, approximate bytes; largest first."""
        from nbtrain.store.retention import disk_usage

        return disk_usage(self)

    def vacuum(self) -> dict[str, int]:
        """Give the free pages left by deletes back to the file system."""
        from nbtrain.store.retention import vacuum

        return vacuum(self)

    def compare(self, run_ids: str | Sequence[str], metric: str = "total_reward") -> pd.DataFrame:
        """By ``ep_index``: one column per run, the mean of ``metric`` over its workers."""
        from nbtrain.store.compare import compare

        return compare(self._reader, run_ids, metric)
