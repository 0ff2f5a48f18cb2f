"""The worker process: build the env and the agent, train or evaluate, stream telemetry.

Event order on the wire: ``Started``; ``GridMap`` before the first episode (grid worlds);
``Steps``, ``Frame`` and ``Episodes`` batches; ``Progress`` from the heartbeat at
any point; ``Artifact`` when the policy is saved; ``Ended`` last. The per-step path is kept
to a handful of attribute-free operations; see ``benchmarks/worker_overhead.py``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from nbtrain import log_codes
from nbtrain.logs import log
from nbtrain.wire.events import Artifact, Ended, EndStatus, Started
from nbtrain.worker.checkpoint import Checkpointer, checkpoint_label, start_agent
from nbtrain.worker.cli import Launch
from nbtrain.worker.control import ControlReader, StopFlag, StoredMark, install_signal_handlers
from nbtrain.worker.emitter import TelemetryEmitter
from nbtrain.worker.heartbeat import Heartbeat, LoopState
from nbtrain.worker.loop import train_loop
from nbtrain.worker.sinks import (
    Sink,
    TelemetryClosedError,
)

GC_THRESHOLD = 50_000  # allocations between young collections (CPython default: 700)


# How long a failing worker waits for the kernel to store its last episodes, so that the
# checkpoint they cover is written (the writer commits within about 0.3 s).
SETTLE_TIMEOUT_S = 2.0


class Worker:
    def __init__(self, launch: Launch, sink: Sink, *, handle_signals: bool = True) -> None:
        """``handle_signals=False``: SIGTERM/SIGINT are not this worker's (it runs in a
        thread of a process that hosts it, e.g. a Ray actor, which stops it via ``flag``)."""
        self.launch = launch
        self.handle_signals = handle_signals
        self.cfg = launch.config
        self.worker_id = launch.worker_id
        self.run_id = self.cfg.run_id
        self.flag = StopFlag()
        self.emitter = TelemetryEmitter(sink, self.run_id, self.worker_id)
        self.state = LoopState(self.cfg.start_episode)
        self.policy_file = launch.policy_dir / f"policy-{self.worker_id}.json"  # written
        self.recorded_policy = launch.run_dir / self.policy_file.name  # resumed / evaluated
        self._checkpointer: Checkpointer | None = None  # made on the first save
        # The kernel's Stored acknowledgements, when it sends them (a local subprocess).
        self.stored = StoredMark() if launch.control_fd is not None else None
        self._snapshot_drops = 0  # emitter.dropped when the pending snapshot was taken
        self.env: Any = None
        self.agent: Any = None

    def _log(self, level: int, code: str, message: str, *args: object) -> None:
        log(level, code, message, *args, run_id=self.run_id, worker_id=self.worker_id)

    # -- lifecycle -------------------------------------------------------------------------

    def run(self) -> int:
        """The whole life of the worker; returns the exit code."""
        cfg = self.cfg
        if self.handle_signals:
            install_signal_handlers(self.flag)
        if self.launch.control_fd is not None:
            ControlReader(
                self.launch.control_fd,
                self.flag,
                run_id=self.run_id,
                worker_id=self.worker_id,
                stored=self.stored,
            ).start()
        heartbeat = Heartbeat(self.emitter, self.state, self.flag)
        status: EndStatus = "completed"
        error = tb = None
        try:
            from nbtrain.agents import agent_label

            # set up before Started (which must still come first: docs/wire.md), so that
            # it names a checkpoint only if the agent really resumed from it
            resume: Path | None = None
            setup_error: BaseException | None = None
            try:
                resume = self._setup()
            except (Exception, SystemExit, KeyboardInterrupt) as exc:
                setup_error = exc
            self.emitter.emit(
                Started(
                    run_id=self.run_id,
                    worker_id=self.worker_id,
                    pid=os.getpid(),
                    ts=time.time(),
                    digest=cfg.digest,
                    env_id=cfg.env_id,
                    agent=agent_label(cfg.agent),
                    mode=cfg.mode,
                    episodes=cfg.episodes,
                    start_episode=cfg.start_episode,
                    resumed_from=None if resume is None else checkpoint_label(resume),
                )
            )
            if setup_error is not None:
                raise setup_error
            self._log(20, log_codes.LOG_WORKER_STARTED, "worker started (pid %d)", os.getpid())
            heartbeat.start()
            _tune_gc()
            train_loop(self)
            if self.state.ep_index < cfg.episodes:
                status = "stopped"
            # Not when the kernel is gone: the episodes since its last commit died with it,
            # and a final save would be ahead of the database.
            if cfg.mode == "train" and self.flag.reason != "orphaned":
                self._save_policy(self.state.ep_index)
        except TelemetryClosedError:
            heartbeat.stop()
            return 0  # the kernel is gone: nobody to tell
        except SystemExit:
            # Agent or env code called sys.exit(): the process exits with that code, as any
            # process that exits does (the kernel reports the code and what it printed),
            # but the episodes it finished go out first, with their checkpoint.
            with contextlib.suppress(Exception):
                self.flush_and_settle()
            heartbeat.stop()
            raise
        except (Exception, KeyboardInterrupt) as exc:
            status = "failed"
            error = f"{type(exc).__name__}: {exc}"
            tb = traceback.format_exc()
            with contextlib.suppress(Exception):
                self.flush_and_settle()  # the episodes before the failure, their checkpoint
            print(tb, file=sys.stderr, end="", flush=True)
            self._log(40, log_codes.LOG_WORKER_FAILED, "worker failed: %s", error)
        finally:
            self._close_env()
            if self._checkpointer is not None:
                self._checkpointer.close()
        heartbeat.stop()
        try:
            self.emitter.emit_final(
                Ended(
                    run_id=self.run_id,
                    worker_id=self.worker_id,
                    status=status,
                    ts=time.time(),
                    episodes_done=self.state.episodes_done,
                    steps_done=self.state.steps_done,
                    error=error,
                    traceback=tb,
                )
            )
        except TelemetryClosedError:
            return 0
        self._log(20, log_codes.LOG_WORKER_EXITED, "worker %s", status)
        return 1 if status == "failed" else 0

    def _setup(self) -> Path | None:
        """Make the env and the agent, and start it; the checkpoint it resumed from, if
        any."""
        import gymnasium as gym

        from nbtrain.agents import make_agent

        cfg = self.cfg
        kwargs = dict(cfg.env_kwargs)
        if cfg.telemetry.frames != "none":
            kwargs["render_mode"] = cfg.telemetry.frames
        self.env = gym.make(cfg.env_id, max_episode_steps=cfg.max_steps_per_episode, **kwargs)
        self.agent = make_agent(
            cfg.agent,
            self.env.observation_space,
            self.env.action_space,
            seed=cfg.seed,
            agent_kwargs=cfg.agent_kwargs,
        )
        return self._load_policy()

    def _load_policy(self) -> Path | None:
        """Start from a checkpoint (restart), ``policy_path`` or, in eval, the own policy."""
        cfg = self.cfg
        path = None
        if cfg.policy_path is not None:
            path = Path(cfg.policy_path)
            if not path.is_absolute():
                path = self.launch.config_path.parent / path
        return start_agent(self.agent, cfg, path, self.recorded_policy, self.policy_file)

    @property
    def _checkpoints(self) -> Checkpointer:
        if self._checkpointer is None:
            self._checkpointer = Checkpointer(self.agent, self.policy_file, gate=self.stored)
        return self._checkpointer

    def _save_policy(self, episode: int, *, final: bool = True) -> None:
        """Checkpoint the agent atomically to ``policy-{worker_id}.json`` (if it can save).

        Periodic checkpoints (``final=False``) skip fsync: they guard against a crashed
        worker, which the page cache survives; the final save is durable."""
        if self._checkpoints.save(episode, final=final):
            self._announce_policy(final=final)

    def checkpoint(self, episode: int) -> float | None:
        """The periodic checkpoint after ``episode`` episodes: a snapshot written after a
        later flush (once its episodes are stored, when the kernel acknowledges), or, for an
        agent without ``policy_bytes`` and no acknowledgements, a flush and a save now, which
        returns the next flush deadline. None while an older snapshot still waits."""
        checkpoints = self._checkpoints
        if not checkpoints.can_save or checkpoints.waiting:
            return None
        if checkpoints.snapshot(episode):
            self._snapshot_drops = self.emitter.dropped
            return None
        deadline = self.flush()  # episodes first: a checkpoint is never ahead of them
        self._save_policy(episode, final=False)
        return deadline

    def flush(self) -> float:
        """Send what is pending, then write the checkpoint snapshot it covers; returns the
        next flush deadline. A snapshot taken before the emitter dropped a batch it could
        not encode is never written: the episodes it follows were not sent."""
        deadline = self.emitter.flush()
        checkpoints = self._checkpointer
        if checkpoints is not None and checkpoints.pending:
            if self.emitter.dropped != self._snapshot_drops:
                checkpoints.discard()
            elif checkpoints.write_pending() is not None:
                self._announce_policy(final=False)
        return deadline

    def flush_and_settle(self, timeout: float = SETTLE_TIMEOUT_S) -> None:
        """Flush, and write the pending snapshot once the kernel has stored the episodes it
        follows (a worker that fails keeps the checkpoint its sent episodes cover). Waits
        at most ``timeout``, and not at all for a kernel that is gone."""
        self.flush()
        checkpoints, stored = self._checkpointer, self.stored
        if checkpoints is None or stored is None:
            return
        deadline = time.monotonic() + timeout
        while (
            (episode := checkpoints.pending_episode) is not None
            and episode > stored.episodes
            and self.flag.reason != "orphaned"
            and time.monotonic() < deadline
        ):
            time.sleep(0.005)
        self.flush()

    def _announce_policy(self, *, final: bool) -> None:
        path = self.policy_file
        self._log(20 if final else 10, log_codes.LOG_WORKER_POLICY_SAVED, "policy saved to %s",
                  path)  # fmt: skip
        self.emitter.emit(
            Artifact(
                run_id=self.run_id,
                worker_id=self.worker_id,
                kind="policy",
                path=str(path.absolute()),
                ts=time.time(),
            ),
            push=final,  # a periodic one goes out with the next flush
        )

    def _close_env(self) -> None:
        if self.env is not None:
            with contextlib.suppress(Exception):
                self.env.close()

    def discard_snapshot(self) -> None:
        """Drop a periodic checkpoint not yet written (the final save follows)."""
        if self._checkpointer is not None:
            self._checkpointer.discard()

    def sleep(self, seconds: float) -> None:
        """``step_delay``, cut short by a stop request."""
        end = time.monotonic() + seconds
        while not self.flag.stop:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))


def _tune_gc() -> None:
    """Collect cycles less often during training: the loop allocates a row tuple and an
    extras dict per step, held for up to 100 ms and then freed by reference counting, so
    frequent young collections only promote them and then rescan every imported module's
    objects. Freezing what setup created and raising the first threshold made training
    about 10 % faster (benchmarks/worker_overhead.py); cycles are still collected."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)
