"""The live side of a run in the kernel that owns it: its workers, ingest thread and statuses.

Every status change is committed to the database *before* this kernel reports it, so that
any other process reading the file sees the same truth (the database is the run's truth,
this object only its owner's view). The session holds the process-wide store writer for its
database while any worker may run. If the database cannot be written, the run does not go on
blind: its workers are stopped and end ``failed`` with the cause, and the rows that could not
be committed are retried until the file takes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from nbtrain.dispatch.backend import Backend, WorkerHandle
from nbtrain.dispatch.held import HeldRows, update_worker
from nbtrain.dispatch.ingest import Ingest, Outcome, WorkerStream
from nbtrain.dispatch.lease import keep_lease
from nbtrain.dispatch.registry import register
from nbtrain.dispatch.remote_stop import stop_was_requested
from nbtrain.dispatch.restart_rules import check_episodes_left, check_restartable
from nbtrain.dispatch.runfiles import worker_config_path, write_worker_config
from nbtrain.errors import StoreError, UnknownWorkerError
from nbtrain.live.hub import RunLive, get_hub
from nbtrain.log_codes import (
    LOG_SERVICE_RUN_FINISHED,
    LOG_SERVICE_RUN_STORE_FAILED,
    LOG_WORKER_EXITED,
    LOG_WORKER_FAILED,
    LOG_WORKER_STARTED,
    LOG_WORKER_STOP_REQUESTED,
)
from nbtrain.logs import log
from nbtrain.statuses import FINAL_STATUSES, run_status_of
from nbtrain.store.liveness import discard_unfinished
from nbtrain.store.writer import StoreWriter, acquire_writer
from nbtrain.worker.config_file import WorkerConfig

# After a storage failure the workers get this long to stop before they are killed.
STORE_FAILURE_STOP_S = 3.0


class RunSession:
    def __init__(
        self,
        run_id: str,
        db_path: Path,
        run_dir: Path,
        configs: dict[str, WorkerConfig],
        backend: Backend,
        statuses: dict[str, str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.db_path = db_path
        self.run_dir = run_dir
        self.configs = dict(configs)
        self.backend = backend
        first = next(iter(configs.values()))
        self.live = get_hub().register(
            RunLive(run_id, list(configs), env_id=first.env_id, episodes=first.episodes)
        )
        self._lock = threading.RLock()
        self.statuses = statuses or dict.fromkeys(configs, "pending")
        self.errors: dict[str, str | None] = {}
        self.procs: dict[str, WorkerHandle] = {}
        self.streams: dict[str, WorkerStream] = {}
        self.all_done = threading.Event()
        self.store_failure: BaseException | None = None
        self.held = HeldRows(run_id, db_path)
        self._stopping: set[str] = set()
        self._writer: StoreWriter | None = None
        self._ingest: Ingest | None = None
        for wid, status in self.statuses.items():
            self.live.set_process(wid, status=status)
        if all(s in FINAL_STATUSES for s in self.statuses.values()):
            self.all_done.set()
        register(self)

    # -- parts ---------------------------------------------------------------------------
    def _ensure_running_parts(self) -> tuple[StoreWriter, Ingest]:
        if self._writer is None:
            writer = acquire_writer(self.db_path)
            if writer.failure is not None:
                writer.release()
                raise writer.failure
            writer.add_failure_listener(self._on_store_failure)
            self._writer = writer
        if self._ingest is None:
            self._ingest = Ingest(self.run_id, self._writer, self.live, self._on_exit)
        return self._writer, self._ingest

    def current_writer(self) -> StoreWriter | None:
        return self._writer

    def owns_live_workers(self) -> bool:
        return self.held.has_workers() or any(
            s not in FINAL_STATUSES for s in self.statuses.values()
        )

    def is_stopping(self, worker_id: str) -> bool:
        return worker_id in self._stopping

    # -- starting ------------------------------------------------------------------------
    def start(self, worker_id: str) -> None:
        """Start one worker; its ``running`` row is committed before it counts as running."""
        with self._lock:
            writer, ingest = self._ensure_running_parts()
            self.all_done.clear()
            path = worker_config_path(self.run_dir, self.run_id, worker_id)
            handle = self.backend.start(
                run_id=self.run_id,
                worker_id=worker_id,
                config_path=path,
                config=self.configs[worker_id],
                cwd=os.getcwd(),
            )
            fields = {
                "status": "running",
                "pid": handle.pid,
                "pid_start": handle.pid_start,
                "backend": self.backend.name,
                "exit_code": None,
                "error": None,
                "traceback": None,
                "output": None,
                "started_at": handle.started_at,
                "ended_at": None,
                "stop_requested": None,
            }
            run_id = self.run_id

            def commit(conn: sqlite3.Connection) -> None:
                update_worker(conn, run_id, worker_id, **fields)
                conn.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", (run_id,))

            try:
                writer.call(commit, label=f"worker {worker_id} running")
            except BaseException:
                handle.stop(2.0)
                handle.close_control()
                for fd in handle.fds():
                    with contextlib.suppress(OSError):
                        handle.close_fd(fd)
                raise
            self.held.forget(worker_id)  # an end held from an earlier start is history now
            self.procs[worker_id] = handle
            self.statuses[worker_id] = "running"
            self.errors[worker_id] = None
            self._stopping.discard(worker_id)
            self.live.set_process(
                worker_id, status="running", pid=handle.pid, started_at=handle.started_at
            )
            self.streams[worker_id] = ingest.add(handle)
        keep_lease(self)
        log(logging.INFO, LOG_WORKER_STARTED, "worker started, pid %s", handle.pid,
            run_id=self.run_id, worker_id=worker_id)  # fmt: skip

    def abort_launch(self, reason: str) -> None:
        """A launch that could not start every worker: stop those that started, and end the
        run ``failed`` with the reason (committed when the file can be written)."""
        with self._lock:
            started = [(w, p) for w, p in self.procs.items() if self.statuses[w] == "running"]
        for wid, _ in started:
            self._stopping.add(wid)
        for _, proc in started:
            proc.request_stop()
        for _, proc in started:
            proc.stop(5.0)
        for wid, _ in started:
            self.streams[wid].finalized.wait(10.0)
        with self._lock:
            pending = [w for w, s in self.statuses.items() if s == "pending"]
            fields = {"status": "failed", "error": reason, "ended_at": time.time()}
            for wid in pending:
                self.statuses[wid] = "failed"
                self.errors[wid] = reason
                self.held.hold(wid, fields)
                self.live.set_process(wid, status="failed", error=reason)
        self.held.flush(self._writer)
        self._finish_if_done()

    # -- ending --------------------------------------------------------------------------
    def _on_exit(self, stream: WorkerStream, outcome: Outcome) -> None:
        """Called on the ingest thread once a worker is reaped and its pipes are drained."""
        wid = stream.worker_id
        failure = self.store_failure
        if failure is not None and outcome.status != "completed":
            error = f"the database could not be written: {failure}"
            outcome = Outcome("failed", outcome.exit_code, error, outcome.traceback)
        fields: dict[str, Any] = {
            "status": outcome.status,
            "exit_code": outcome.exit_code,
            "error": outcome.error,
            "traceback": outcome.traceback,
            "output": _tail_text(stream),
            "ended_at": time.time(),
        }
        run_id = self.run_id
        discard = outcome.status != "completed"
        # A local worker killed by a signal this kernel did not send, before it reported its
        # end: another process may have ended it after asking through the database (a stop
        # from there while this kernel was not acting), which makes it stopped, as any
        # stop() does. A worker that reported failing, or failed here, stays failed.
        signalled = (
            outcome.status == "failed"
            and outcome.exit_code < 0
            and failure is None
            and stream.ended is None
            and stream.internal_error is None
            and self.backend.name == "local"
        )

        def commit(conn: sqlite3.Connection) -> bool:
            asked = signalled and stop_was_requested(conn, run_id, wid)
            row = (
                {**fields, "status": "stopped", "error": None, "traceback": None}
                if asked
                else fields
            )
            update_worker(conn, run_id, wid, **row)
            if discard:
                discard_unfinished(conn, run_id, wid)
            return asked

        writer = self._writer
        try:
            if writer is None:
                raise StoreError(f"no writer for {self.db_path}")
            if writer.call(commit, label=f"worker {wid} {outcome.status}"):
                outcome = Outcome("stopped", outcome.exit_code, None, None)
        except (StoreError, TimeoutError) as exc:
            self.held.hold(wid, fields)
            if self.store_failure is None:
                self.store_failure = exc
        self.live.set_process(wid, status=outcome.status, exit_code=outcome.exit_code,
                              error=outcome.error, traceback=outcome.traceback,
                              ended_at=fields["ended_at"])  # fmt: skip
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
            self.errors[wid] = outcome.error
            self._stopping.discard(wid)
        self._finish_if_done()

    def _finish_if_done(self) -> None:
        with self._lock:
            if any(s not in FINAL_STATUSES for s in self.statuses.values()):
                return
            if self.all_done.is_set():
                return
            status = run_status_of(list(self.statuses.values()))
            writer = self._writer
            if writer is not None and writer.failure is None:
                run_id = self.run_id
                try:
                    writer.call(
                        lambda c: c.execute(
                            "UPDATE runs SET status = ? WHERE run_id = ?", (status, run_id)
                        ),
                        label=f"run {run_id} {status}",
                    )
                    writer.flush()
                    writer.checkpoint()
                except (StoreError, TimeoutError):
                    self.held.hold_run(status)
            else:
                self.held.hold_run(status)
            self._release()
            self.all_done.set()
        log(logging.INFO, LOG_SERVICE_RUN_FINISHED, "run %s", status, run_id=self.run_id)

    def _release(self) -> None:
        ingest, self._ingest = self._ingest, None
        writer, self._writer = self._writer, None
        if ingest is not None:
            # The ingest thread may be calling us; it exits by itself once no worker is left.
            threading.Thread(target=_close_when_idle, args=(ingest,), daemon=True).start()
        if writer is not None:
            writer.remove_failure_listener(self._on_store_failure)
            writer.release()

    # -- storage failure -----------------------------------------------------------------
    def _on_store_failure(self, exc: BaseException) -> None:
        """Called once, from the writer thread: stop every worker (never block that thread)."""
        if not self.owns_live_workers():
            return
        if self.store_failure is None:
            self.store_failure = exc
        log(logging.ERROR, LOG_SERVICE_RUN_STORE_FAILED,
            "the database cannot be written (%s); stopping the run's workers", exc,
            run_id=self.run_id)  # fmt: skip
        threading.Thread(
            target=self._stop_after_failure, name=f"nbtrain-store-failed-{self.run_id}", daemon=True
        ).start()

    def _stop_after_failure(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(None, STORE_FAILURE_STOP_S)

    def retry_unwritten(self) -> bool:
        """Commit the rows a failed database refused, once it takes writes again."""
        return self.held.retry()

    # -- control -------------------------------------------------------------------------
    def check_worker(self, worker_id: str) -> None:
        if worker_id not in self.statuses:
            raise UnknownWorkerError(self.run_id, worker_id, self.statuses)

    def stop(self, worker_id: str | None, timeout: float) -> None:
        """Ask, terminate, kill within ``timeout``; return once reaped and committed.
        (After a storage failure the workers end ``failed`` all the same: see _on_exit.)"""
        with self._lock:
            targets = [worker_id] if worker_id is not None else list(self.statuses)
            for wid in targets:
                self.check_worker(wid)
            procs = [
                (wid, self.procs[wid], self.streams[wid])
                for wid in targets
                if wid in self.procs and self.statuses[wid] not in FINAL_STATUSES
            ]
            self._stopping.update(wid for wid, _, _ in procs)
        deadline = time.monotonic() + timeout
        for wid, proc, _ in procs:
            log(logging.INFO, LOG_WORKER_STOP_REQUESTED, "stop requested",
                run_id=self.run_id, worker_id=wid)  # fmt: skip
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

    def check_restartable(self, worker_id: str) -> None:
        """Raise unless ``worker_id`` is a stopped or failed worker of the run; checked before
        anything is discarded for a restart."""
        check_restartable(self.run_id, self.statuses, worker_id)

    def prepare_restart(self, worker_id: str, config: WorkerConfig, next_episode: int) -> None:
        """Rewrite the worker's file from ``config`` (rebuilt from the database, never read
        back from the run folder), continuing at episode ``next_episode``."""
        self.check_restartable(worker_id)
        check_episodes_left(self.run_id, worker_id, next_episode, config.episodes)
        config = msgspec.structs.replace(config, start_episode=next_episode)
        write_worker_config(config, worker_config_path(self.run_dir, self.run_id, worker_id))
        self.configs[worker_id] = config

    def writer(self) -> StoreWriter:
        with self._lock:
            return self._ensure_running_parts()[0]

    def live_procs(self) -> list[WorkerHandle]:
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
