"""``RunDashboard``: live per-worker tabs for one run, fed by a throttled ticker thread.

The ticker wakes on hub changes, sends at most one batched delta per 0.1 s (nothing when
nothing changed) and ends once every worker has ended and the final state went out. A view
that renders (first display, another cell, a reloaded page) asks for a snapshot, so every
view shows the same state; deltas never repeat history.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import traitlets

from nbtrain.log_codes import (
    LOG_LIVE_CONTROLLER_BUFFER_STEPS_FLUSHED,
    LOG_UI_DASHBOARD_CALLBACK_ERROR,
)
from nbtrain.logs import log
from nbtrain.statuses import FINAL_STATUSES
from nbtrain.widgets._common import (
    DEFERRED,
    bundle_trait,
    reject_unknown_kwargs,
)
from nbtrain.widgets.dashboard_actions import RunActions
from nbtrain.widgets.dashboard_data import SCALARS, LiveTracker, Packet
from nbtrain.widgets.dashboard_store import store_snapshot, stored_frames
from nbtrain.widgets.dashboard_watch import StoreWatcher
from nbtrain.widgets.fallback import StaticTwin, html_table, publish, text_table
from nbtrain.widgets.outcome import outcome_text

if TYPE_CHECKING:
    from nbtrain.live.hub import RunLive
    from nbtrain.run import Run

MIN_INTERVAL = 0.1  # at most 10 messages per second per dashboard
PER_WORKER_INTERVAL = 0.025  # with many workers, tick slower so bytes/s stay flat


class RunDashboard(RunActions):
    """One tab per worker plus an overview; works for live and finished runs. Once the run
    has ended it offers Evaluate policies and Keep / Archive / Delete (``RunActions``)."""

    _esm = bundle_trait("dashboard.js")
    _css = bundle_trait("dashboard.css")
    _log_code = LOG_UI_DASHBOARD_CALLBACK_ERROR

    run_id = traitlets.Unicode("").tag(sync=True)
    worker_ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    env_id = traitlets.Unicode("").tag(sync=True)
    # statuses, recent-episode count, rolling window, grid kinds (widgets/vocab.py)
    vocab = traitlets.Dict().tag(sync=True)

    def __init__(
        self, run: Run | str, db: str | os.PathLike[str] = "nbtrain.sqlite", **kwargs: Any
    ) -> None:
        """``run``: a :class:`~nbtrain.Run` (what ``run.dashboard()`` passes), or a run id
        read from ``db``."""
        reject_unknown_kwargs("RunDashboard", kwargs, ("run", "db"))
        from nbtrain.dispatch.start import resolve_db
        from nbtrain.live.hub import get_hub

        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None
        self._ticker_lock = threading.Lock()
        self._ticker_running = False
        self._look_again = False
        self._run_handle: Run | None = None
        from nbtrain.run import Run

        if isinstance(run, str):
            run_id, self._db = run, resolve_db(db)
        elif isinstance(run, Run):
            run_id, self._db, self._run_handle = run.run_id, run.db, run
        else:
            raise TypeError(f"run must be a nbtrain.Run or a run id, not {type(run).__name__}")
        self._key = run_id
        self._live: RunLive | None = get_hub().get(run_id)
        self._twin = StaticTwin()
        if self._live is not None:
            worker_ids, env_id = list(self._live.worker_ids), self._live.env_id
        else:
            worker_ids, env_id = self._run().worker_ids, ""
        from nbtrain.widgets.retention import default_archive
        from nbtrain.widgets.vocab import dashboard_vocab

        super().__init__(
            run_id=run_id,
            worker_ids=worker_ids,
            env_id=env_id,
            archive_to=str(default_archive(self._db)),
            vocab=dashboard_vocab(),
        )
        self._lock = threading.Lock()
        self._tracker = LiveTracker(self._live) if self._live is not None else None
        self.sent_messages = 0
        self.sent_bytes = 0
        self._handlers.update(hello=self._hello, stop=self._stop, focus=self._focus)
        # a run that another process writes: views are nudged to read it again on changes
        self._watcher = StoreWatcher(self._db, run_id, self._nudge, self._closed)
        self._nudge_seq = 0
        self._frames: str | None = None  # the run's telemetry.frames, once read
        self._install_actions()
        if self._live is not None:
            self._live.on_worker_start(self._ensure_ticker)  # updates resume after a restart

    # -- plumbing --------------------------------------------------------------------------
    def _run(self) -> Run:
        if self._run_handle is None:
            from nbtrain.run import Run

            self._run_handle = Run.open(self._key, db=self._db)
        return self._run_handle

    def _send_packet(self, packet: Packet) -> None:
        self.sent_messages += 1
        self.sent_bytes += packet.nbytes
        self._send_message(packet.content, packet.buffers)
        # At most 10 a second and only at DEBUG: what the live buffers sent to the views.
        log(logging.DEBUG, LOG_LIVE_CONTROLLER_BUFFER_STEPS_FLUSHED,
            "dashboard update of %d bytes sent", packet.nbytes, run_id=self.run_id)  # fmt: skip

    def _ensure_ticker(self) -> None:
        """Start the ticker, or make a running one look again before it ends (a worker may
        have been restarted just as the ticker decided that everything had ended)."""
        if self._tracker is None or self._closed.is_set():
            return
        with self._ticker_lock:
            self._look_again = True
            if self._ticker_running:
                return
            self._ticker_running = True
            self._ticker = threading.Thread(
                target=self._ticker_main, name=f"nbtrain-dashboard-{self.run_id}", daemon=True
            )
            self._ticker.start()

    def _ticker_may_end(self) -> bool:
        with self._ticker_lock:
            if self._look_again:
                self._look_again = False
                return False
            self._ticker_running = False
            return True

    def _ticker_main(self) -> None:
        live, tracker = self._live, self._tracker
        assert live is not None
        assert tracker is not None
        version = -1
        last_send = 0.0
        interval = max(MIN_INTERVAL, PER_WORKER_INTERVAL * len(live.worker_ids))
        try:
            while not self._closed.is_set():
                live.wait_for_change(version, timeout=0.2)
                pause = interval - (time.monotonic() - last_send)
                if pause > 0 and self._closed.wait(pause):
                    return
                if self._closed.is_set():
                    return
                with self._lock:
                    with live.lock:
                        version = live.version
                        packet = tracker.delta()
                        final = tracker.all_final()
                    if packet is not None:
                        self._send_packet(packet)
                        last_send = time.monotonic()
                if final and packet is None and self._ticker_may_end():
                    self._update_twin()  # the saved notebook shows how the run ended
                    return
        except Exception as err:
            self.report_error("dashboard update", err, run_id=self.run_id)
        finally:
            with self._ticker_lock:
                self._ticker_running = False

    def close(self) -> None:
        closed = getattr(self, "_closed", None)
        if closed is not None:
            closed.set()
        ticker = getattr(self, "_ticker", None)
        evaluation = getattr(self, "eval_dashboard", None)
        if evaluation is not None:
            evaluation.close()
        super().close()
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(timeout=2)
        watcher = getattr(self, "_watcher", None)
        if watcher is not None:
            watcher.join(timeout=2)

    @property
    def ticker_alive(self) -> bool:
        return self._ticker is not None and self._ticker.is_alive()

    # -- requests from the view ------------------------------------------------------------
    def _hello(self, params: dict[str, Any], _buffers: list[bytes]) -> Any:
        """A view (re)rendered: bring the others up to date, then answer with a snapshot."""
        request_id = params["id"]
        frames = self._frames_setting() if self._tracker is not None else None
        with self._lock:
            if self._tracker is not None and self._live is not None:
                with self._live.lock:
                    delta = self._tracker.delta()
                    snapshot = self._tracker.snapshot()
                if delta is not None:
                    self._send_packet(delta)
                snapshot.content["frames"] = frames
            else:
                snapshot = store_snapshot(self._db, self.run_id)
            self.sent_messages += 1
            self.sent_bytes += snapshot.nbytes
            self.respond(request_id, result=snapshot.content, buffers=snapshot.buffers)
        if self._tracker is None and not _all_final(snapshot):
            self._watcher.start()
        self._ensure_ticker()
        return DEFERRED

    def _frames_setting(self) -> str | None:
        """The run's ``telemetry.frames`` (the view tells "no frame yet" from "no frames
        asked for"); read from the stored config until found, as the hub does not hold it."""
        if self._frames is None:
            self._frames = stored_frames(self._db, self.run_id)
        return self._frames

    def _nudge(self) -> None:
        """Tell the views that the stored run changed: a delta that leaves a gap in their
        sequence (by 2, so that two nudges never look contiguous) makes them resync."""
        with self._lock:
            self._nudge_seq += 2
            self._send_message({"kind": "delta", "seq": self._nudge_seq, "workers": {}})

    def _stop(self, params: dict[str, Any], _buffers: list[bytes]) -> Any:
        """Stop off the kernel's main thread (it blocks until the workers are reaped)."""
        request_id = params["id"]
        worker_id = params.get("worker_id")

        def work() -> None:
            try:
                statuses = self._run().stop(worker_id)
            except Exception as err:
                self.report_error(
                    "stop",
                    err,
                    run_id=self.run_id,
                    worker_id=None if worker_id is None else str(worker_id),
                )
                self.respond(request_id, error=err)
                return
            self.respond(request_id, result={"statuses": statuses})
            self._ensure_ticker()

        threading.Thread(target=work, name=f"nbtrain-stop-{self.run_id}", daemon=True).start()
        return DEFERRED

    def _focus(self, params: dict[str, Any], _buffers: list[bytes]) -> Any:
        """Which worker tab a view shows: rgb frames are sent only for shown workers."""
        view = str(params.get("view", ""))
        worker_id = params.get("worker_id")
        if self._tracker is not None:
            with self._lock:
                if worker_id is None:
                    self._tracker.focused.pop(view, None)
                else:
                    self._tracker.focused[view] = str(worker_id)
            if worker_id is not None:
                # rgb frames wait for a shown worker: a ticker that ended must send its last
                self._ensure_ticker()
        return None

    # -- text fallbacks --------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"RunDashboard(run_id={self.run_id!r}, workers={list(self.worker_ids)!r})"

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per worker, as the static fallback shows it."""
        if self._live is not None:
            with self._live.lock:
                workers = [(wid, self._live.workers[wid]) for wid in self._live.worker_ids]
                return [
                    {
                        "worker_id": wid,
                        "status": w.status,
                        "exit_code": w.exit_code,
                        "episodes": w.episodes_done,
                        "steps": w.steps_done,
                        "mean_return": _rounded(w.mean_return),
                        "last100_return": _rounded(w.last100_return),
                    }
                    for wid, w in workers
                ]
        snapshot = store_snapshot(self._db, self.run_id).content
        rows = []
        for wid, state in snapshot["workers"].items():
            s = state["scalars"]
            rows.append(
                {
                    "worker_id": wid,
                    "status": s["status"],
                    "exit_code": s["exit_code"],
                    "episodes": s["episodes_done"],
                    "steps": s["steps_done"],
                    "mean_return": _rounded(s["mean_return"]),
                    "last100_return": _rounded(s["last100_return"]),
                }
            )
        return rows

    def _rows(self) -> list[dict[str, Any]]:
        try:
            return self.summary_rows()
        except Exception as err:  # a fallback must never break display
            self.report_error("summary", err, run_id=self.run_id)
            return []

    def static_html(self) -> str:
        """The summary table, captioned with the run id and how it ended."""
        rows = self._rows()
        outcome = outcome_text(rows) if rows else None
        return html_table(f"Run {self.run_id}" + (f" · {outcome}" if outcome else ""), rows)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        bundle = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle or {}, {})
        data["text/plain"] = repr(self) + "\n" + text_table(self._rows())
        return data, metadata

    def _ipython_display_(self) -> None:
        """The widget, then its static twin (what a saved notebook shows without a kernel)."""
        data, metadata = self._repr_mimebundle_()
        publish(data, metadata)
        self._twin.show(self.static_html())

    def _update_twin(self) -> None:
        if self._twin.shown:
            self._twin.update(self.static_html())


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


__all__ = ["MIN_INTERVAL", "SCALARS", "RunDashboard"]


def _all_final(snapshot: Packet) -> bool:
    workers = snapshot.content.get("workers", {})
    return all(w["scalars"]["status"] in FINAL_STATUSES for w in workers.values())
