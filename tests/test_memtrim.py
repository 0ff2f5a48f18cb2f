"""The C heap's free pages go back to the OS (glibc), and the store writer asks for it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nbtrain import memtrim
from nbtrain.ids import new_run_id
from nbtrain.store import writer as writer_module
from nbtrain.store.writer import acquire_writer
from tests.kit.events import full_episode


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_free_chunks_between_live_ones_are_released() -> None:
    """64 KiB buffers come from malloc's heap (below its mmap threshold); freeing every
    other one leaves free chunks glibc keeps, which only a trim hands back."""
    if not memtrim.release_free_memory():
        pytest.skip("the C library has no malloc_trim (not glibc)")
    buffers = [bytes(64 * 1024) for _ in range(800)]  # ~50 MB, each page touched
    del buffers[::2]  # ~25 MB free, each piece between two live ones
    before = rss_mb()
    assert memtrim.release_free_memory() is True
    after = rss_mb()
    assert before - after > 8, (before, after)
    assert len(buffers) == 400  # (the live half stays alive until here)


def test_without_malloc_trim_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memtrim, "_looked", True)
    monkeypatch.setattr(memtrim, "_trim", None)
    assert memtrim.release_free_memory() is False


def test_the_store_writer_trims_between_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[float] = []
    monkeypatch.setattr(writer_module, "TRIM_INTERVAL_S", 0.0)
    monkeypatch.setattr(writer_module, "release_free_memory", lambda: bool(calls.append(1)))
    w = acquire_writer(tmp_path / "t.sqlite")
    try:
        run = new_run_id()
        w.create_run(run_id=run, name="t", created_at=time.time(), digest="d", config={})
        for ep in range(3):
            w.add_events(full_episode(run, "000001", ep))
            w.flush()
    finally:
        w.release()
    assert len(calls) >= 3
