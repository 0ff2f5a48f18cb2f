"""One local Ray instance for the whole test session (2 CPUs), and the same pipeline tests
run against both backends.

Ray's worker processes inherit the environment of the driver that started the instance, so
``PYTHONPATH`` (this checkout's ``src`` and the test agents) is set before ``ray.init``.
"""

from __future__ import annotations

import os
import sqlite3
import time
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


Launch = Callable[..., nbtrain.Run]


@pytest.fixture
def launch() -> Launch:
    """``nbtrain.launch`` (a fixture so the tests read the same on every backend)."""
    return nbtrain.launch


def config(**overrides: object) -> nbtrain.TrainConfig:
    fields: dict[str, object] = {
        "env_id": "FrozenLake-v1",
        "env_kwargs": {"is_slippery": False},
        "agent": "q_learning",
        "episodes": 10,
        "max_steps_per_episode": 50,
        "workers": 2,
    }
    fields.update(overrides)
    return nbtrain.TrainConfig.model_validate(fields)


def slow(episodes: int = 10_000, **overrides: object) -> nbtrain.TrainConfig:
    return config(
        agent="pipeline_agents:Slow", episodes=episodes, agent_kwargs={"sleep": 0.002}, **overrides
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def worker_rows(db: Path, run_id: str) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        rows = con.execute("SELECT * FROM workers WHERE run_id = ?", (run_id,)).fetchall()
    return {row["worker_id"]: dict(row) for row in rows}


def pid_alive(pid: int) -> bool:
    """Ask the OS: a zombie counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def actor_gone(ray: Any, run_id: str, worker_id: str, timeout: float = 15.0) -> bool:
    """Has the named actor of this worker gone from the cluster?"""
    from nbtrain.dispatch.ray_backend import actor_name, run_namespace

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ray.get_actor(actor_name(run_id, worker_id), namespace=run_namespace(run_id))
        except ValueError:
            return True
        time.sleep(0.1)
    return False
