from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.kernel import Kernel


@pytest.fixture
def kernels() -> Iterator[list[Kernel]]:
    """Kernels started by a test; killed at its end whatever happened."""
    made: list[Kernel] = []
    yield made
    for kernel in made:
        kernel.kill()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "nbtrain.sqlite"
