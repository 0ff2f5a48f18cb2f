"""The worker's pulse: a :class:`Progress` event twice a second from its own thread, so the
kernel sees a live worker even while one step takes minutes."""

from __future__ import annotations

import threading
import time

from nbtrain.wire.events import Progress, extras_epsilon
from nbtrain.worker.control import StopFlag
from nbtrain.worker.emitter import TelemetryEmitter
from nbtrain.worker.sinks import TelemetryClosedError

HEARTBEAT_INTERVAL_S = 0.5


class LoopState:
    """Counters the training loop updates and the heartbeat reads (plain attributes: a
    slightly stale read is fine, a lock per step is not)."""

    def __init__(self, start_episode: int) -> None:
        self.steps_done = 0
        self.episodes_done = 0
        self.ep_index = start_episode
        # The agent's last end_episode() and learn() extras (dicts, or ε itself from the
        # one-call tabular episode): ε is read from them only when a heartbeat needs it,
        # not once an episode.
        self.extras: tuple[object, object] = (None, None)

    @property
    def epsilon(self) -> float | None:
        for extras in self.extras:
            eps = extras if type(extras) is float else extras_epsilon(extras)
            if eps is not None:
                return eps
        return None


class Heartbeat:
    def __init__(
        self,
        emitter: TelemetryEmitter,
        state: LoopState,
        flag: StopFlag,
        interval: float = HEARTBEAT_INTERVAL_S,
    ) -> None:
        self.emitter = emitter
        self.state = state
        self.flag = flag
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nbtrain-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; returns once no heartbeat can be written any more."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        state = self.state
        last_time, last_steps = time.monotonic(), state.steps_done
        while not self._stop.wait(self.interval):
            now, steps = time.monotonic(), state.steps_done
            rate = (steps - last_steps) / max(now - last_time, 1e-9)
            last_time, last_steps = now, steps
            event = Progress(
                run_id=self.emitter.run_id,
                worker_id=self.emitter.worker_id,
                ts=time.time(),
                episodes_done=state.episodes_done,
                steps_done=steps,
                steps_per_s=rate,
                ep_index=state.ep_index,
                epsilon=state.epsilon,
            )
            try:
                self.emitter.emit_side(event)
            except TelemetryClosedError:
                self.flag.request("telemetry-closed")
                return
