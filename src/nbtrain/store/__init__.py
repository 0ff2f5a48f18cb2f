"""The SQLite telemetry store: schema and migrations, the single writer, DataFrame reads.

See docs/store.md for the tables, storage conventions and DataFrame dtypes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from nbtrain.store.migrations import migrate, needs_migration
from nbtrain.store.queries import Reader
from nbtrain.store.schema import SCHEMA_VERSION
from nbtrain.store.summary import aggregate as _aggregate
from nbtrain.store.summary import run_summary as _run_summary
from nbtrain.store.writer import StoreWriter, acquire_writer

__all__ = [
    "SCHEMA_VERSION",
    "StoreWriter",
    "TelemetryStore",
    "acquire_writer",
    "migrate",
]


class TelemetryStore:
    """Read a store file as DataFrames; safe while runs write to it (here or elsewhere).

    Opening an up-to-date file only reads it. A missing file is created empty and an older
    one is upgraded in place; a file from a newer nbtrain raises ``SchemaVersionError``.
    """

    def __init__(self, path: str | Path = "nbtrain.sqlite") -> None:
        self.path = Path(path).expanduser().resolve()
        if needs_migration(self.path):
            migrate(self.path)
        self._reader = Reader(self.path)

    def __repr__(self) -> str:
        return f"TelemetryStore({str(self.path)!r})"

    def runs(self) -> pd.DataFrame:
        return self._reader.runs()

    def workers(self, run_id: str) -> pd.DataFrame:
        return self._reader.workers(run_id)

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
        return _run_summary(self._reader, run_id)

    def aggregate(self, run_id: str, metric: str = "total_reward") -> pd.DataFrame:
        return _aggregate(self._reader, run_id, metric)

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
