"""One local Ray instance for the whole test session (2 CPUs), and the same pipeline tests
run against both backends.

Ray's worker processes inherit the environment of the driver that started the instance, so
``PYTHONPATH`` (this checkout's ``src`` and the test agents) is set before ``ray.init``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import nbtrain

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HELPERS = [str(HERE), str(ROOT / "tests" / "helpers"), str(ROOT / "src")]
BACKENDS = ["local", "ray"]


def _pythonpath() -> str:
    old = os.environ.get("PYTHONPATH")
    return os.pathsep.join(HELPERS + ([old] if old else []))


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """The session's local Ray (``num_cpus=2``), shut down at the end."""
    pytest.importorskip("ray")
    import ray

    from nbtrain.dispatch.ray_backend import RayBackend

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", _pythonpath())
        mp.delenv("RAY_ADDRESS", raising=False)
        backend = RayBackend(local_num_cpus=2)
        backend.connect()
        assert backend.started_ray
        try:
            yield ray
        finally:
            backend.close()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh database in a fresh working directory; workers can import the test agents."""
    monkeypatch.chdir(tmp_path)
    for path in HELPERS[:2]:
        monkeypatch.syspath_prepend(path)
    monkeypatch.setenv("PYTHONPATH", _pythonpath())
    return tmp_path / "nbtrain.sqlite"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs once per backend; "ray" on the session's instance."""
    name: str = request.param
    if name == "ray":
        request.getfixturevalue("ray_cluster")
    return name


@pytest.fixture
def launch() -> Callable[..., nbtrain.Run]:
    """``nbtrain.launch`` (a fixture so the tests read the same on every backend)."""
    return nbtrain.launch
