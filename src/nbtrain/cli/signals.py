"""SIGTERM and SIGHUP for the command line: a ``kill`` or a closed terminal stops the run
being followed the way Ctrl-C does, so it ends ``stopped``, not ``failed`` ("its kernel
died", which is what the next reader would find if the process just ended).

The handler never raises into the main thread while a run is followed: an exception
thrown at an arbitrary bytecode can land inside a lock's acquire or a writer's flush and
hang or break the very stop it asks for. It starts ``run.stop()`` in a thread instead;
``run.wait()`` then returns as for any stop, and the command exits ``128 + signal``.
Before a run exists there is nothing to stop: the signal is raised like Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

NAMES = ("SIGTERM", "SIGHUP")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP before anything needed stopping."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Termination:
    """The signal received (``signum``) and what stops the followed run (``stop``)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.stop: Callable[[], object] | None = None
        self._deferring = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        for name in NAMES:  # a second signal must not cut the stop short
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
        self.signum = signum
        if self.stop is not None:
            threading.Thread(target=self.stop, name="nbtrain-terminate", daemon=True).start()
        elif not self._deferring:
            raise Terminated(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """A signal during the block is only noted (``launch()``: raising inside it could
        leave started workers behind a run that says ``running``); see :meth:`follow`."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False

    def follow(self, stop: Callable[[], object]) -> None:
        """From now on a signal calls ``stop``; so does one noted while deferred."""
        self.stop = stop
        if self.signum is not None:
            stop()


@contextmanager
def handled() -> Iterator[Termination]:
    """Handle SIGTERM and SIGHUP for the block (main thread only; else nothing is done)."""
    termination = Termination()
    if threading.current_thread() is not threading.main_thread():
        yield termination
        return
    names = [n for n in NAMES if hasattr(signal, n)]
    previous = {n: signal.signal(getattr(signal, n), termination.handle) for n in names}
    try:
        yield termination
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)
