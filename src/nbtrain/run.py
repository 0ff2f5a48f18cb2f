"""``nbtrain.Run``: one run, live in this kernel or read back from the database."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrain.dispatch.launcher import DEFAULT_DB, resolve_db, run_dir_for
from nbtrain.dispatch.session import (
    FINAL_STATUSES,
    RunSession,
    live_session,
    run_status_of,
    worker_config_path,
)
from nbtrain.errors import ConfigError, UnknownRunError
from nbtrain.ids import normalize_worker_id
from nbtrain.worker.spec import load_worker_config

if TYPE_CHECKING:
    import pandas as pd

    from nbtrain.config import TrainConfig
    from nbtrain.store import TelemetryStore


def _process_ui_events() -> None:
    try:
        from nbtrain.widgets.kernel_poll import process_ui_events
    except ImportError:
        return
    process_ui_events()


class Run:
    """Handle on a run. Made by :func:`nbtrain.launch` or :meth:`Run.open`."""

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
        """A past or running run, also after a kernel restart."""
        db_path = resolve_db(db)
        session = live_session(run_id, db_path)
        run = cls(run_id, db_path, session)
        if session is None:
            run.store.workers(run_id)  # raises UnknownRunError early
        return run

    # -- reading ---------------------------------------------------------------------------
    @property
    def store(self) -> TelemetryStore:
        if self._store is None:
            from nbtrain.store import TelemetryStore

            if not self.db.exists():
                raise UnknownRunError(f"no database at {self.db}")
            self._store = TelemetryStore(self.db)
        return self._store

    @property
    def worker_ids(self) -> list[str]:
        if self._session is not None:
            return list(self._session.statuses)
        return [str(w) for w in self.store.workers(self.run_id)["worker_id"]]

    def status(self) -> dict[str, str]:
        if self._session is not None:
            return dict(self._session.statuses)
        frame = self.store.workers(self.run_id)
        result: dict[str, str] = {}
        for wid, status, pid in zip(frame["worker_id"], frame["status"], frame["pid"], strict=True):
            if status in {"running", "pending"} and not _worker_alive(pid):
                status = "failed"  # its kernel died; the worker exited with it
            result[str(wid)] = str(status)
        return result

    @property
    def run_status(self) -> str:
        return run_status_of(self.status())

    def config(self, *, agent: Any = None) -> TrainConfig:
        """The run's :class:`~nbtrain.TrainConfig`, rebuilt from the database (same digest),
        e.g. to repeat it with ``nbtrain.TrainForm.from_config(run.config())``. A notebook-
        defined agent is not stored by value: pass it again as ``agent``."""
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
        return self.store.episodes(self.run_id, worker_id=worker_id, columns=columns)

    def steps(
        self,
        worker_id: object | None = None,
        ep_index: int | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        return self.store.steps(
            self.run_id, worker_id=worker_id, ep_index=ep_index, columns=columns
        )

    def summary(self) -> pd.DataFrame:
        return self.store.run_summary(self.run_id)

    def aggregate(self, metric: str = "total_reward") -> pd.DataFrame:
        return self.store.aggregate(self.run_id, metric=metric)

    def dashboard(self) -> Any:
        from nbtrain.widgets import RunDashboard

        return RunDashboard(self.run_id, db=self.db)

    # -- control ---------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> dict[str, str]:
        """Block until every worker has exited and its telemetry is committed.

        On timeout raise ``TimeoutError`` (the workers go on); on KeyboardInterrupt stop the
        workers, then re-raise. Widget messages (Stop buttons) are processed while waiting.
        """
        session = self._session
        if session is None:
            return self.status()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not session.all_done.wait(0.05):
                _process_ui_events()
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"run {self.run_id} still running after {timeout} s: {self.status()}"
                    )
        except KeyboardInterrupt:
            self.stop()
            raise
        return self.status()

    def stop(self, worker_id: object | None = None, timeout: float = 10) -> dict[str, str]:
        """Stop one worker or all; returns once they are reaped and their telemetry committed."""
        session = self._session
        wid = None if worker_id is None else normalize_worker_id(worker_id)
        if session is None:
            if wid is not None and wid not in self.status():
                raise self._unknown_worker(wid)
            return self.status()
        session.stop(wid, timeout)
        return self.status()

    def restart(self, worker_id: object) -> None:
        """Relaunch a stopped or failed worker; its episodes continue where they stopped."""
        wid = normalize_worker_id(worker_id)
        session = self._session or self._revive_session()
        session.check_worker(wid)
        writer = session.writer()
        writer.flush()
        next_episode = writer.discard_unfinished_steps(self.run_id, wid)
        session.prepare_restart(wid, next_episode)
        writer.set_run_status(self.run_id, "running")
        session.start(wid)

    def _revive_session(self) -> RunSession:
        """A session for a run recorded earlier (e.g. before a kernel restart)."""
        statuses = self.status()
        run_dir = run_dir_for(self.db, self.run_id)
        configs = {
            wid: load_worker_config(worker_config_path(run_dir, self.run_id, wid))
            for wid in statuses
        }
        self._session = RunSession(self.run_id, self.db, run_dir, configs, statuses)
        return self._session

    def _unknown_worker(self, wid: str) -> Exception:
        from nbtrain.errors import UnknownWorkerError

        return UnknownWorkerError(
            f"run {self.run_id} has no worker {wid!r}; its workers are {self.worker_ids}"
        )

    def __repr__(self) -> str:
        return (
            f"Run(run_id={self.run_id!r}, workers={self.worker_ids!r}, status={self.run_status!r})"
        )


def _worker_alive(pid: object) -> bool:
    """Is ``pid`` a live nbtrain worker? (pids are reused, so check the command line.)"""
    if not isinstance(pid, int | float) or pid != pid or int(pid) <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(int(pid), 0)
        except OSError:
            return False
        return True
    return b"nbtrain.worker" in cmdline


__all__ = ["FINAL_STATUSES", "Run"]
