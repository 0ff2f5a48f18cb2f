"""The GC pause around telemetry decoding: scoped, exception-safe, never overriding a user."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbtrain.dispatch.gcpause import gc_paused


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_paused_inside_enabled_after() -> None:
    gc.enable()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_enabled_again_after_an_exception() -> None:
    gc.enable()
    with pytest.raises(ValueError, match="boom"), gc_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_gc_someone_turned_off_stays_off() -> None:
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


@pytest.mark.slow
def test_the_pause_never_covers_a_wait_for_the_writer(tmp_path: Path) -> None:
    # Submitting can block while the writer is behind; the GC must be on meanwhile.
    import nbtrain
    from nbtrain.store.writer import acquire_writer

    gc.enable()
    db = tmp_path / "nbtrain.sqlite"
    writer = acquire_writer(db)
    seen: list[bool] = []
    submit = writer.submit

    def recording_submit(op: Any) -> None:
        seen.append(gc.isenabled())
        submit(op)

    writer.submit = recording_submit  # type: ignore[method-assign]
    try:
        config = nbtrain.TrainConfig(env_id="FrozenLake-v1", episodes=20, workers=2)
        run = nbtrain.launch(config, db=db)
        assert set(run.wait(timeout=60).values()) == {"completed"}
    finally:
        writer.release()
    assert seen
    assert all(seen)
    assert gc.isenabled()
