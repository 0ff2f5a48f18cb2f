"""Liveness across processes: a run owned by another live "kernel" is refused; once that
kernel is SIGKILLed, the store reports its workers failed and the run can be deleted."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.kit.kernel import Kernel, rows
from tests.kit.processes import wait_for
from tests.kit.runs import TABLES, counts

from nbtrain.errors import RunError
from nbtrain.store import TelemetryStore

pytestmark = pytest.mark.slow


@pytest.fixture
def kernels() -> Iterator[list[Kernel]]:
    made: list[Kernel] = []
    yield made
    for kernel in made:
        kernel.kill()


def test_another_kernels_live_run_is_refused_until_that_kernel_dies(
    tmp_path: Path, kernels: list[Kernel]
) -> None:
    db = tmp_path / "owned.sqlite"
    kernel = Kernel(db, episodes=100_000, workers=2, delay=0.002)
    kernels.append(kernel)
    run_id = kernel.run_id
    wait_for(lambda: rows(db, "SELECT COUNT(*) FROM episodes")[0][0] >= 4, 30, "episodes")
    store = TelemetryStore(db)  # this process has no session for the run: only the store knows
    with pytest.raises(RunError, match="has live workers"):
        store.delete_run(run_id)
    with pytest.raises(RunError, match="has live workers"):
        store.archive_run(run_id, to=tmp_path / "archive.sqlite")
    assert counts(db, run_id)["runs"] == 1

    kernel.proc.send_signal(signal.SIGKILL)
    kernel.proc.wait(5)
    killed = time.monotonic()

    def deleted() -> dict[str, int] | None:
        try:
            return store.delete_run(run_id)
        except RunError:
            return None

    result = wait_for(deleted, 15, "the dead kernel's run to become deletable", interval=0.2)
    print(f"deletable {time.monotonic() - killed:.1f} s after the kernel was killed")
    assert result["runs"] == 1
    assert result["workers"] == 2
    assert counts(db, run_id) == dict.fromkeys(TABLES, 0)
    assert not (tmp_path / "nbtrain-runs" / run_id).exists()
