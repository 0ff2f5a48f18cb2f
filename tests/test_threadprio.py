"""The kernel's busy background threads run below the notebook's priority (Linux)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from nbtrain.store.writer import acquire_writer
from nbtrain.threadprio import BACKGROUND_NICE, lower_this_thread

linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="nice is per thread on Linux"
)


def nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def run_in_thread(fn: object) -> tuple[object, int, int]:
    """``fn()``'s result, and the thread's nice value before and after it."""
    out: list[object] = []

    def body() -> None:
        tid = threading.get_native_id()
        before = nice_of(tid)
        out.extend([fn(), before, nice_of(tid)])  # type: ignore[operator]

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    return out[0], int(out[1]), int(out[2])  # type: ignore[call-overload]


@linux
def test_only_the_calling_thread_is_lowered() -> None:
    main_before = nice_of(threading.get_native_id())
    done, before, after = run_in_thread(lower_this_thread)
    assert done is True
    assert after == min(19, before + BACKGROUND_NICE)
    assert nice_of(threading.get_native_id()) == main_before


@linux
def test_nice_is_capped_at_19() -> None:
    done, _, after = run_in_thread(lambda: lower_this_thread(40))
    assert done is True
    assert after == 19


def test_elsewhere_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    done, before, after = run_in_thread(lower_this_thread)
    assert done is False
    assert after == before


@linux
def test_a_forbidden_setpriority_leaves_the_thread_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    done, before, after = run_in_thread(lower_this_thread)
    assert done is False
    assert after == before


@linux
def test_the_store_writer_thread_runs_lowered(tmp_path: Path) -> None:
    main = nice_of(threading.get_native_id())
    w = acquire_writer(tmp_path / "db.sqlite")
    try:
        tid = w._thread.native_id
        assert tid is not None
        deadline = time.monotonic() + 10
        while nice_of(tid) == main and time.monotonic() < deadline:
            time.sleep(0.01)  # the thread lowers itself as it starts
        assert nice_of(tid) == min(19, main + BACKGROUND_NICE)
    finally:
        w.release()


@linux
def test_the_ingest_thread_of_a_run_runs_lowered(tmp_path: Path) -> None:
    import nbtrain

    main = nice_of(threading.get_native_id())
    config = nbtrain.TrainConfig(
        env_id="FrozenLake-v1", agent="q_learning", episodes=50, step_delay=0.01, seed=0
    )
    run = nbtrain.launch(config, db=tmp_path / "db.sqlite")
    try:
        deadline = time.monotonic() + 30
        found: list[int] = []
        while not found and time.monotonic() < deadline:
            ingest = [t for t in threading.enumerate() if t.name.startswith("nbtrain-ingest-")]
            found = [t.native_id for t in ingest if t.native_id is not None]
            time.sleep(0.01)
        assert found, "no ingest thread while the run is going"
        time.sleep(0.05)  # it lowers itself as it starts
        assert nice_of(found[0]) == min(19, main + BACKGROUND_NICE)
    finally:
        run.stop()
        run.wait(timeout=60)
