"""The step batching that keeps a worker's telemetry cheap (the sinks are in ``sinks``).

The training loop appends one tuple per recorded step to :attr:`TelemetryEmitter.rows` (and
one per finished episode to :attr:`TelemetryEmitter.episodes`) and compares the step's
timestamp with a deadline; everything else (transposing rows into the :class:`Steps` and
:class:`Episodes` columns, encoding, writing) happens at most every ``FLUSH_INTERVAL``
seconds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, cast

import msgspec

from nbtrain.wire.codec import to_builtins_hook
from nbtrain.wire.events import Episodes, StepRows, Steps, TdRow
from nbtrain.worker.sinks import Sink

# Steps are flushed at least this often (seconds), so a slow run never looks frozen.
FLUSH_INTERVAL = 0.1

StepRow = tuple[int, int, Any, Any, Any, Any, Any, Any, float]
"""``(ep_index, step_index, action, reward, terminated, truncated, obs, extras, ts)``"""
TdStepRow = tuple[int, int, Any, Any, Any, Any, Any, float, float, float]
"""``(ep_index, step_index, action, reward, terminated, truncated, obs, epsilon, td_error,
ts)``: a built-in tabular agent's step (``TelemetryEmitter.td_extras``)."""
EpisodeRow = tuple[int, float, int, bool, bool, int, float, float, Any]
"""``(ep_index, total_reward, length, terminated, truncated, seed, started_at, ended_at,
extras)``: the columns of :class:`Episodes`, in order. ``extras`` is the agent's
``end_episode()`` dict, or with ``TelemetryEmitter.td_extras`` its ε as a float."""


class TelemetryEmitter:
    """Batches step rows into :class:`Steps` frames and frames into writes.

    The training loop appends step rows to :attr:`rows` and finished episodes to
    :attr:`episodes` (one tuple each, no lock). A flush sends the :class:`Steps` events
    holding every step recorded since the last flush, then the small events given to
    :meth:`hold` (grid maps), then the finished episodes as :class:`Episodes`. So an
    episode's steps always precede it, and a fast run sends a few large events per flush,
    not two per (often 8-step) episode. Every write goes through one lock, so the heartbeat
    thread and the training loop never interleave bytes of two frames; the heartbeat also
    pushes queued bytes.
    """

    # Queued bytes beyond this are written at once rather than at the next deadline.
    MAX_PENDING = 1 << 20
    # Steps per Steps event: the kernel decodes an event in one call that holds its GIL, so
    # a 100 ms batch goes out in pieces of about 64 KiB to keep the notebook responsive.
    MAX_STEPS_PER_EVENT = 1024
    # Held events beyond this are sent at once.
    MAX_HELD = 4096
    # Episodes per Episodes event (a 100 ms flush of FrozenLake holds about 2,500).
    MAX_EPISODES_PER_EVENT = 4096

    def __init__(self, sink: Sink, run_id: str, worker_id: str) -> None:
        self.sink = sink
        self.run_id = run_id
        self.worker_id = worker_id
        self.rows: list[StepRow] = []
        # True: rows are TdStepRow (the one-call tabular episode), not StepRow, and the
        # extras of an EpisodeRow are ε (a float), not a dict
        self.td_extras = False
        # Where the current batch's early-encoded steps begin in the sink (encode_steps).
        self._early: int | None = None
        self._early_steps = 0
        # Batches dropped because they could not be encoded (a checkpoint taken before a
        # drop must not be written: the episodes it follows were never sent).
        self.dropped = 0
        self.episodes: list[EpisodeRow] = []
        self._held: list[msgspec.Struct] = []
        self._lock = threading.Lock()
        self.steps_sent = 0

    def emit(self, event: msgspec.Struct, *, push: bool = True) -> None:
        """Queue ``event`` after the pending steps and write it out, or with ``push=False``
        leave the write to the next :meth:`flush` (main thread only: it owns :attr:`rows`).

        If the pending steps cannot be sent (an agent returned extras that are not a dict,
        or values that cannot be encoded), they and the held events are dropped and the
        error raised: the worker fails, and its final ``ended`` event still goes out."""
        with self._lock:
            self._close_batch(drop_on_error=True)
            self.sink.send(event)
            if push or self.sink.pending() > self.MAX_PENDING:
                self.sink.push()

    def emit_final(self, event: msgspec.Struct) -> None:
        """Send the worker's last event whatever happened to the pending batch: steps that
        cannot be sent are dropped (the worker is failing already) but ``event`` goes out."""
        with self._lock:
            with contextlib.suppress(Exception):
                self._close_batch(drop_on_error=True)
            self.sink.send(event)
            self.sink.push()

    def hold(self, event: msgspec.Struct) -> None:
        """Send small ``event`` at the next flush, after the steps recorded until then (main
        thread only). Large events (frames) go through :meth:`emit`: their bytes count."""
        with self._lock:
            self._held.append(event)
            if len(self._held) >= self.MAX_HELD:
                self._close_batch(drop_on_error=True)
                if self.sink.pending() > self.MAX_PENDING:
                    self.sink.push()

    def emit_side(self, event: msgspec.Struct) -> None:
        """Send ``event`` from another thread (heartbeats) after the steps and held events so
        far, so an episode that ended just before a long step is not held back until it ends.

        Taking the rows here is safe while the main thread appends: only the first ``n`` are
        taken and deleted, and the episodes are counted first, so every step of the
        episodes taken was appended before them and is taken too. Rows the main thread will
        refuse (bad extras) are left for it to report.
        """
        with self._lock:
            with contextlib.suppress(Exception):  # the main thread reports it at its flush
                self._close_batch(drop_on_error=False)
            self.sink.send(event)
            self.sink.push()
            # If that close failed, steps encode_steps had queued went out with this write:
            # a later drop can no longer take them back.
            self._early = None

    def encode_steps(self) -> None:
        """Encode the pending steps now, while they are still in the CPU's cache, and leave
        the write to the next flush (main thread only). The loop calls this once an episode
        ends with a full event's worth of rows: a 100 ms batch of FrozenLake is ~15,000
        rows (~6 MB of tuples and dicts), which had fallen out of the cache by the deadline.

        The steps encoded early stay part of the batch the next flush closes: if anything
        of that batch fails to encode, they are taken back out with the rest (nothing
        half-sent). Finished episodes wait for the flush: their steps still go first."""
        with self._lock:
            n = len(self.rows)
            if self._early is None:
                self._early = self.sink.pending()
            try:
                self._send_steps(n)
            except Exception:
                self._drop_batch(n, len(self.episodes), self._early)
                raise
            del self.rows[:n]
            self._early_steps += n

    def flush(self) -> float:
        """Write pending steps and queued frames (main thread only); returns the next
        flush deadline on the ``time.time()`` clock."""
        with self._lock:
            self._close_batch(drop_on_error=True)
            self.sink.push()
        return time.time() + FLUSH_INTERVAL

    def _close_batch(self, *, drop_on_error: bool) -> None:
        """Queue the pending steps as :class:`Steps` events, then the held events, then the
        finished episodes: all of them or, if one fails to encode, none (nothing half-sent,
        nothing sent twice). On failure the batch stays for a later try, or with
        ``drop_on_error`` is dropped, the steps :meth:`encode_steps` queued included:
        finished episodes whose steps cannot be sent must not be sent either."""
        m = len(self.episodes)  # before the rows: see emit_side
        n = len(self.rows)
        if not n and not m and not self._held and self._early is None:
            return
        mark = self.sink.pending()
        try:
            if n:
                self._send_steps(n)
            for event in self._held:
                self.sink.send(event)
            if m:
                self._send_episodes(m)
        except Exception:
            if drop_on_error:
                self._drop_batch(n, m, mark)
            else:
                self.sink.truncate(mark)
            raise
        del self.rows[:n]
        del self.episodes[:m]
        self.steps_sent += n + self._early_steps
        self._held = []
        self._early = None
        self._early_steps = 0

    def _drop_batch(self, n: int, m: int, mark: int) -> None:
        """Forget the batch being closed: its rows, held events and episodes, and the bytes
        queued for it since ``mark`` (or since :meth:`encode_steps` began, if it did)."""
        self.sink.truncate(self._early if self._early is not None else mark)
        del self.rows[:n]
        del self.episodes[:m]
        self._held = []
        self._early = None
        self._early_steps = 0
        self.dropped += 1

    def _send_episodes(self, m: int) -> None:
        """Queue the first ``m`` finished episodes, in batches (or one by one for a person)."""
        batch = self.episodes[:m]
        run_id, worker_id, td = self.run_id, self.worker_id, self.td_extras
        if not self.sink.batches_episodes:
            event = Episodes(run_id=run_id, worker_id=worker_id, **_columns(batch, td))
            for one in event.expand():
                self.sink.send(one)
            return
        size = self.MAX_EPISODES_PER_EVENT
        for first in range(0, m, size):
            columns = _columns(batch[first : first + size], td)
            try:
                self.sink.send(Episodes(run_id=run_id, worker_id=worker_id, **columns))
            except (NotImplementedError, TypeError) as exc:
                raise _unencodable(exc, columns["extras"], "agent.end_episode()") from exc

    def _send_steps(self, n: int) -> None:
        """Queue the first ``n`` rows (the main thread may append more meanwhile)."""
        batch = self.rows[:n]
        size = self.MAX_STEPS_PER_EVENT
        run_id, worker_id = self.run_id, self.worker_id
        if self.td_extras:
            # The rows as they are (wire v4): no transposing them here. A sink read by
            # people (--jsonl) gets the same steps as columns.
            for first in range(0, n, size):
                rows = cast("list[TdRow]", batch[first : first + size])  # TdStepRow tuples
                event = StepRows(run_id=run_id, worker_id=worker_id, rows=rows)
                self.sink.send(event if self.sink.step_rows else event.to_steps())
            return
        for first in range(0, n, size):
            ep, step, action, reward, term, trunc, obs, extras, ts = map(
                list, zip(*batch[first : first + size], strict=True)
            )
            wrong = set(map(type, extras)) - {dict, type(None)}
            if wrong:
                # The kernel would reject the batch; say so here, where it can be fixed
                # (the caller drops what this call queued before).
                names = ", ".join(sorted(t.__name__ for t in wrong))
                raise TypeError(f"agent.learn() returned {names}; it must return a dict or None")
            columns = Steps(
                run_id=run_id,
                worker_id=worker_id,
                ep_index=ep,
                step_index=step,
                action=action,
                reward=reward,
                terminated=term,
                truncated=trunc,
                obs=obs,
                extras=extras,
                ts=ts,
            )
            try:
                self.sink.send(columns)
            except (NotImplementedError, TypeError) as exc:  # a value msgspec cannot encode
                raise _unencodable(exc, extras, "agent.learn()", obs, action) from exc


def _unencodable(
    exc: BaseException, extras: list[Any], source: str, *others: list[Any]
) -> TypeError:
    """Which of a batch's values could not be encoded, said so that it can be fixed: the
    agent's extras (``source`` returned them) or else the environment's observations or
    actions."""
    try:
        msgspec.msgpack.encode(extras, enc_hook=to_builtins_hook)
    except (NotImplementedError, TypeError):
        return TypeError(
            f"{source} returned extras that cannot be stored ({exc}); extras values must "
            "be numbers, strings, booleans, None, or lists and dicts of them (numpy values "
            "are converted)"
        )
    what = "observations or actions" if others else "values"
    return TypeError(f"the environment's {what} cannot be stored ({exc})")


# The Episodes fields after run_id and worker_id: the order of an EpisodeRow.
_EPISODE_COLUMNS = Episodes.__struct_fields__[2 : Episodes.__struct_fields__.index("extras") + 1]


def _columns(rows: list[EpisodeRow], td: bool) -> dict[str, Any]:
    """The keyword arguments of :class:`Episodes` for ``rows``; with ``td`` their extras
    are ε, sent as the one extras column."""
    columns: dict[str, Any] = dict(
        zip(_EPISODE_COLUMNS, map(list, zip(*rows, strict=True)), strict=True)
    )
    if td:
        columns["extras_columns"] = {"epsilon": columns["extras"]}
        columns["extras"] = []
    return columns
