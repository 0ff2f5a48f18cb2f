"""How a :class:`nbtrain.Run` ends: waiting for it, stopping it, and raising its failures.

Kept apart from :mod:`nbtrain.run` (which launches, opens, restarts and evaluates runs)
because ending a run is a topic of its own: blocking until every worker has exited while widget
messages are still handled, the timeout checks that come before anything is asked of a
worker, stopping through this kernel's session or, from another process, through the
database (:mod:`nbtrain.dispatch.remote_stop`), and turning failed workers into
:class:`~nbtrain.errors.WorkerFailedError`.
"""

from __future__ import annotations

import math
import numbers
import time
from typing import TYPE_CHECKING

from nbtrain.dispatch.remote_stop import stop_remote
from nbtrain.errors import StoreError, UnknownWorkerError, WorkerFailedError
from nbtrain.ids import normalize_worker_id
from nbtrain.run_reads import RunReads
from nbtrain.statuses import FINAL_STATUSES

if TYPE_CHECKING:
    from nbtrain.dispatch.session import RunSession

__all__ = ["RunEnding"]

# How often a Run that does not own its run polls the database in wait()/stop().
POLL_S = 0.1


def _process_ui_events() -> None:
    try:
        from nbtrain.jupyter_events import process_ui_events
    except ImportError:
        return
    process_ui_events()


class RunEnding(RunReads):
    """How a :class:`~nbtrain.Run` ends: wait, stop, raise its failures (set up by ``Run``)."""

    def wait(
        self, timeout: float | None = None, *, raise_on_failure: bool = False
    ) -> dict[str, str]:
        """Block until every worker has exited and its telemetry is committed.

        Widgets keep working meanwhile (their messages are handled while this waits).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait at most; None waits until the run ends.
        raise_on_failure : bool, optional
            Then call :meth:`raise_for_failures`.

        Returns
        -------
        dict of str to str
            The final ``{worker_id: status}``.

        Raises
        ------
        TimeoutError
            Still running after ``timeout`` seconds (the workers go on).
        TypeError, ValueError
            ``timeout`` is not a number of seconds >= 0 (nothing waited for).
        StoreError
            The database could not be written; the workers were stopped and failed.
        KeyboardInterrupt
            After stopping the workers (they end ``stopped``).
        WorkerFailedError
            With ``raise_on_failure=True``, when any worker failed.

        Examples
        --------
        >>> run.wait(timeout=600, raise_on_failure=True)  # doctest: +SKIP
        {'000001': 'completed', '000002': 'completed'}
        """
        forever = timeout is None or (isinstance(timeout, float) and timeout == math.inf)
        deadline = None if forever else time.monotonic() + _seconds(timeout)
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
        """Stop one worker or all; return once they are reaped and their telemetry committed.

        From a process that does not own the run, the request goes through the database to
        the owning kernel, and this returns once the database says the workers ended. If
        that kernel does not act (hung, suspended), the workers' processes on this machine
        are ended from here, each after checking by its start time that the pid is still
        that worker.

        Parameters
        ----------
        worker_id : worker id, optional
            The worker to stop; None stops all.
        timeout : float, optional
            Seconds each worker gets to stop by itself before it is killed.

        Returns
        -------
        dict of str to str
            ``{worker_id: status}`` afterwards (stopped workers are ``stopped``).

        Raises
        ------
        UnknownWorkerError
            ``worker_id`` is not a worker of the run.
        TypeError, ValueError
            ``timeout`` is not a number of seconds >= 0 (nothing is stopped).
        TimeoutError
            From another process: the owning kernel has not recorded the stop in time (the
            message says whether the processes were ended from here).

        Examples
        --------
        >>> run.stop("000002")  # doctest: +SKIP
        """
        timeout = _seconds(timeout)
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
        return stop_remote(self.db, self.run_id, targets, timeout, self.status)

    def raise_for_failures(self) -> None:
        """Raise if any worker failed; do nothing otherwise.

        Raises
        ------
        WorkerFailedError
            Carrying each failed worker's error line and traceback.

        Examples
        --------
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


def _seconds(timeout: object) -> float:
    """Check ``timeout`` before anything is asked of a worker: finite seconds >= 0."""
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    seconds = float(timeout)
    if not 0 <= seconds < math.inf:  # NaN too
        raise ValueError(f"timeout must be a finite number of seconds >= 0, not {timeout!r}")
    return seconds


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
