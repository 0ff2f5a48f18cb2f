"""The worker's control reader over a real pipe: a Stop frame, garbage, EOF."""

from __future__ import annotations

import os
import time

from nbtrain.wire import events as ev
from nbtrain.wire.codec import encode_frame
from nbtrain.worker.control import ControlReader, StopFlag

RUN = "01J00000000000000000000000"


def test_control_reader_stop_frame_then_eof(pipe: tuple[int, int]) -> None:
    r, w = pipe
    flag = StopFlag()
    exits: list[int] = []
    reader = ControlReader(
        r, flag, run_id=RUN, worker_id="000001", grace=0.05, exit_now=exits.append
    )
    reader.start()
    os.write(w, b"junk" + encode_frame(ev.Stop())[:5])
    time.sleep(0.05)
    assert not flag.stop  # garbage and half a frame do not stop the worker
    os.write(w, encode_frame(ev.Stop())[5:])
    deadline = time.monotonic() + 5
    while not flag.stop and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (flag.stop, flag.reason) == (True, "stop-frame")
    assert exits == []
    os.close(w)
    reader.thread.join(5)
    assert exits == [0]
    assert flag.reason == "stop-frame"  # the first reason is kept


def test_eof_alone_means_orphaned(pipe: tuple[int, int]) -> None:
    r, w = pipe
    flag = StopFlag()
    exits: list[int] = []
    reader = ControlReader(r, flag, run_id=RUN, worker_id="1", grace=0.0, exit_now=exits.append)
    os.close(w)
    reader.start()
    reader.thread.join(5)
    assert (flag.stop, flag.reason, exits) == (True, "orphaned", [0])
