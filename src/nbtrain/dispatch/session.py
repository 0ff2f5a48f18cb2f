"""The live side of a run in this kernel: its worker processes, ingest thread and statuses.

A session exists while the run has (or may again have, after ``restart``) processes here.
It holds the process-wide store writer for its database until every worker is reaped and
the run's telemetry is committed.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from pathlib import Path

import msgspec

from nbtrain.dispatch.ingest import Ingest, Outcome, WorkerStream
from nbtrain.dispatch.process import WorkerProcess
from nbtrain.errors import RunError, UnknownWorkerError
from nbtrain.live.hub import RunLive, get_hub
from nbtrain.log_codes import (
    LOG_SERVICE_RUN_FINISHED,
    LOG_WORKER_EXITED,
    LOG_WORKER_FAILED,
    LOG_WORKER_STARTED,
    LOG_WORKER_STOP_REQUESTED,
)
from nbtrain.logs import log
from nbtrain.store.writer import StoreWriter, acquire_writer
from nbtrain.worker.spec import WorkerConfig, dump_worker_config, load_worker_config

FINAL_STATUSES = frozenset({"completed", "failed", "stopped"})


def run_status_of(statuses: dict[str, str]) -> str:
    """``running`` while any worker runs, else failed > stopped > completed."""
    values = set(statuses.values())
    if values & {"running", "pending"}:
        return "running"
    for status in ("failed", "stopped"):
        if status in values:
            return status
    return "completed"


def worker_config_path(run_dir: Path, run_id: str, worker_id: str) -> Path:
    return run_dir / f"worker-{run_id}-{worker_id}.json"


class RunSession:
    def __init__(
        self,
        run_id: str,
        db_path: Path,
        run_dir: Path,
        configs: dict[str, WorkerConfig],
        statuses: dict[str, str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.db_path = db_path
        self.run_dir = run_dir
        self.configs = dict(configs)
        first = next(iter(configs.values()))
        self.live = get_hub().register(
            RunLive(run_id, list(configs), env_id=first.env_id, episodes=first.episodes)
        )
        self._lock = threading.RLock()
        self.statuses = statuses or dict.fromkeys(configs, "pending")
        self.procs: dict[str, WorkerProcess] = {}
        self.streams: dict[str, WorkerStream] = {}
        self.all_done = threading.Event()
        self._writer: StoreWriter | None = None
        self._ingest: Ingest | None = None
        for wid, status in self.statuses.items():
            self.live.set_process(wid, status=status)
        _SESSIONS.add(self)

    # -- processes -------------------------------------------------------------------------
    def _ensure_running_parts(self) -> tuple[StoreWriter, Ingest]:
        if self._writer is None:
            self._writer = acquire_writer(self.db_path)
        if self._ingest is None:
            self._ingest = Ingest(self.run_id, self._writer, self.live, self._on_exit)
        return self._writer, self._ingest

    def start(self, worker_id: str) -> None:
        with self._lock:
            writer, ingest = self._ensure_running_parts()
            self.all_done.clear()
            path = worker_config_path(self.run_dir, self.run_id, worker_id)
            proc = WorkerProcess(worker_id, path, cwd=os.getcwd())
            self.procs[worker_id] = proc
            self.statuses[worker_id] = "running"
            writer.upsert_worker(
                self.run_id,
                worker_id,
                status="running",
                pid=proc.pid,
                exit_code=None,
                error=None,
                started_at=proc.started_at,
                ended_at=None,
            )
            self.live.set_process(worker_id, status="running", pid=proc.pid)
            self.streams[worker_id] = ingest.add(proc)
        log(
            logging.INFO,
            LOG_WORKER_STARTED,
            "worker started, pid %d",
            proc.pid,
            run_id=self.run_id,
            worker_id=worker_id,
        )

    def _on_exit(self, stream: WorkerStream, outcome: Outcome) -> None:
        """Called on the ingest thread once a worker is reaped and its pipes are drained."""
        wid = stream.worker_id
        writer = self._writer
        assert writer is not None
        output = _tail_text(stream)
        writer.upsert_worker(
            self.run_id,
            wid,
            status=outcome.status,
            exit_code=outcome.exit_code,
            error=outcome.error,
            traceback=outcome.traceback,
            output=output,
            ended_at=time.time(),
        )
        if outcome.status != "completed":
            writer.discard_unfinished_steps(self.run_id, wid)
        self.live.set_process(
            wid,
            status=outcome.status,
            exit_code=outcome.exit_code,
            error=outcome.error,
            traceback=outcome.traceback,
        )
        log(
            logging.WARNING if outcome.status == "failed" else logging.INFO,
            LOG_WORKER_FAILED if outcome.status == "failed" else LOG_WORKER_EXITED,
            "worker %s (exit code %d)%s",
            outcome.status,
            outcome.exit_code,
            f": {outcome.error}" if outcome.error else "",
            run_id=self.run_id,
            worker_id=wid,
        )
        with self._lock:
            self.statuses[wid] = outcome.status
            if any(s not in FINAL_STATUSES for s in self.statuses.values()):
                return
            status = run_status_of(self.statuses)
            writer.set_run_status(self.run_id, status)
            writer.flush()
            writer.checkpoint()
            self._release()
            self.all_done.set()
        log(logging.INFO, LOG_SERVICE_RUN_FINISHED, "run %s", status, run_id=self.run_id)

    def _release(self) -> None:
        ingest, self._ingest = self._ingest, None
        writer, self._writer = self._writer, None
        if ingest is not None:
            # The ingest thread calls us; it exits by itself once no worker is left.
            threading.Thread(target=_close_when_idle, args=(ingest,), daemon=True).start()
        if writer is not None:
            writer.release()

    # -- control ---------------------------------------------------------------------------
    def check_worker(self, worker_id: str) -> None:
        if worker_id not in self.statuses:
            raise UnknownWorkerError(
                f"run {self.run_id} has no worker {worker_id!r}; its workers are "
                f"{sorted(self.statuses)}"
            )

    def stop(self, worker_id: str | None, timeout: float) -> None:
        with self._lock:
            targets = [worker_id] if worker_id is not None else list(self.statuses)
            for wid in targets:
                self.check_worker(wid)
            procs = [
                (wid, self.procs[wid], self.streams[wid])
                for wid in targets
                if wid in self.procs and self.statuses[wid] not in FINAL_STATUSES
            ]
        deadline = time.monotonic() + timeout
        for wid, proc, _ in procs:
            log(
                logging.INFO,
                LOG_WORKER_STOP_REQUESTED,
                "stop requested",
                run_id=self.run_id,
                worker_id=wid,
            )
            proc.request_stop()
        threads = [
            threading.Thread(target=proc.stop, args=(max(deadline - time.monotonic(), 0.0),))
            for _, proc, _ in procs
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for _, _, stream in procs:
            # Reaped above; the ingest thread drains the pipes and commits right after.
            stream.finalized.wait(max(deadline - time.monotonic(), 0.0) + 10.0)

    def prepare_restart(self, worker_id: str, next_episode: int) -> None:
        self.check_worker(worker_id)
        status = self.statuses[worker_id]
        if status not in {"stopped", "failed"}:
            raise RunError(
                f"worker {worker_id!r} of run {self.run_id} is {status}; only a stopped or "
                "failed worker can be restarted"
            )
        config = self.configs[worker_id]
        if next_episode >= config.episodes:
            raise RunError(
                f"worker {worker_id!r} has already recorded all {config.episodes} episodes"
            )
        path = worker_config_path(self.run_dir, self.run_id, worker_id)
        config = msgspec.structs.replace(load_worker_config(path), start_episode=next_episode)
        dump_worker_config(config, path)
        self.configs[worker_id] = config

    def writer(self) -> StoreWriter:
        with self._lock:
            return self._ensure_running_parts()[0]

    def live_procs(self) -> list[WorkerProcess]:
        with self._lock:
            return [p for w, p in self.procs.items() if self.statuses[w] not in FINAL_STATUSES]


def _tail_text(stream: WorkerStream) -> str | None:
    parts = []
    for name, data in (("stdout", stream.stdout), ("stderr", stream.stderr)):
        if data:
            parts.append(f"--- {name} (last {len(data)} bytes) ---\n")
            parts.append(bytes(data).decode("utf-8", "replace"))
    return "".join(parts) or None


def _close_when_idle(ingest: Ingest) -> None:
    for _ in range(100):
        try:
            ingest.close()
            return
        except RuntimeError:
            time.sleep(0.05)


_SESSIONS: weakref.WeakSet[RunSession] = weakref.WeakSet()


def live_session(run_id: str, db_path: Path) -> RunSession | None:
    for session in list(_SESSIONS):
        if session.run_id == run_id and session.db_path == db_path:
            return session
    return None


@atexit.register
def _stop_all_at_exit() -> None:
    """No worker outlives the kernel: on a normal exit, stop them; on a hard death they see
    EOF on their control pipe and exit by themselves."""
    for session in list(_SESSIONS):
        procs = session.live_procs()
        for proc in procs:
            proc.request_stop()
        for proc in procs:
            proc.stop(timeout=2.0)
