"""How a worker learns it must stop: a ``Stop`` frame, SIGTERM/SIGINT, or EOF on the control
pipe (the kernel died). The training loop polls one flag between steps; when the kernel is
gone a watchdog ends the process even if the loop is stuck inside a slow step. The same
pipe brings ``Stored`` frames: how many of the worker's episodes the kernel committed."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from nbtrain import log_codes
from nbtrain.logs import log
from nbtrain.wire.codec import FrameDecoder
from nbtrain.wire.events import Stop, Stored

# After the kernel dies the loop gets this long to wrap up before os._exit.
ORPHAN_GRACE_S = 1.5


class StopFlag:
    """A plain attribute the loop reads each step (cheaper than ``threading.Event.is_set``).

    ``reason`` says who asked: ``"stop-frame"``, ``"SIGTERM"``, ``"SIGINT"``, ``"orphaned"``.
    """

    def __init__(self) -> None:
        self.stop = False
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        if not self.stop:
            self.reason = reason
        self.stop = True


class StoredMark:
    """The episodes before ``episodes`` are in the database (the last ``Stored`` frame); a
    plain attribute, written by the reader thread, read by the loop at each flush."""

    def __init__(self) -> None:
        self.episodes = 0


def install_signal_handlers(flag: StopFlag) -> None:
    """SIGTERM and SIGINT finish the current step and end the run as ``stopped``."""

    def handler(signum: int, frame: FrameType | None) -> None:
        flag.request(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


class ControlReader:
    """Daemon thread reading the control pipe; sets ``flag`` on ``Stop`` or EOF, ``stored``
    on ``Stored``."""

    def __init__(
        self,
        fd: int,
        flag: StopFlag,
        *,
        run_id: str,
        worker_id: str,
        stored: StoredMark | None = None,
        grace: float = ORPHAN_GRACE_S,
        exit_now: Callable[[int], None] = os._exit,
    ) -> None:
        self.fd = fd
        self.flag = flag
        self.stored = stored
        self.run_id = run_id
        self.worker_id = worker_id
        self.grace = grace
        self._exit_now = exit_now
        self.thread = threading.Thread(target=self._run, name="nbtrain-control", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        decoder = FrameDecoder(kind="control")
        while True:
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                data = b""
            if not data:
                self._orphaned()
                return
            for item in decoder.feed(data):
                if isinstance(item, Stored):
                    if self.stored is not None and item.episodes > self.stored.episodes:
                        self.stored.episodes = item.episodes
                elif isinstance(item, Stop):
                    log(
                        20,
                        log_codes.LOG_WORKER_STOP_REQUESTED,
                        "stop frame received",
                        run_id=self.run_id,
                        worker_id=self.worker_id,
                    )
                    self.flag.request("stop-frame")

    def _orphaned(self) -> None:
        """The kernel is gone: stop now and, if the loop does not finish in time, exit."""
        self.flag.request("orphaned")
        time.sleep(self.grace)
        self._exit_now(0)
