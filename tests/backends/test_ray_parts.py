"""The Ray backend's parts without a cluster where they can be: the actor class is plain
Python (Ray only wraps it), bad arguments, a missing Ray, and Ray never imported unless
this backend is used."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest

import nbtrain
from nbtrain.dispatch.ray_actor import WorkerActor
from nbtrain.wire.codec import FrameDecoder
from nbtrain.wire.events import Ended, Episode, Event
from tests.kit.backends import config, slow


def relay(actor: WorkerActor) -> tuple[list[Event], bytes, int | None, int]:
    """Everything the actor streams: events, stdout+stderr, exit code, batch count."""
    decoder = FrameDecoder()
    events: list[Event] = []
    output = b""
    code = None
    batches = 0
    for telemetry, stdout, stderr, last in actor.stream(batch_bytes=4096, batch_seconds=0.02):
        batches += 1
        events += [e for e in decoder.feed(telemetry) if not isinstance(e, Exception)]
        output += stdout + stderr
        code = last
    return events, output, code, batches


def make_actor(tmp_path: Path, cfg: nbtrain.TrainConfig) -> WorkerActor:
    run_id = nbtrain.new_run_id()
    wc = cfg.worker_configs(run_id=run_id, run_dir=str(tmp_path))[0]
    return WorkerActor(msgspec.json.encode(wc), wc.worker_id, str(tmp_path), str(tmp_path))


def test_the_actor_relays_a_whole_worker_in_batches(db: Path) -> None:
    actor = make_actor(db.parent, config(episodes=5, workers=1))
    private = actor.config_path
    assert private.stat().st_mode & 0o777 == 0o600, "the config copy is private"
    assert actor.info()["pid"] == actor.popen.pid
    events, _, code, batches = relay(actor)
    assert code == 0
    assert batches > 1
    ended = [e for e in events if isinstance(e, Ended)]
    assert len(ended) == 1
    assert ended[0].status == "completed"
    assert [e.ep_index for e in events if isinstance(e, Episode)] == list(range(5))
    assert not private.exists(), "the private copy is removed once the worker ended"


def test_the_actor_asks_its_worker_to_stop(db: Path) -> None:
    actor = make_actor(db.parent, slow(workers=1))
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(relay(actor)))
    thread.start()
    actor.stop()
    thread.join(60)
    events, _, code, _ = result[0]
    assert code == 0
    assert [e.status for e in events if isinstance(e, Ended)] == ["stopped"]


def test_the_actor_relays_a_failing_workers_stderr(db: Path) -> None:
    actor = make_actor(
        db.parent,
        config(
            env_id="CliffWalking-v1",
            env_kwargs={},
            agent="pipeline_agents:Raises",
            agent_kwargs={"fail_at": 3},
            workers=1,
        ),
    )
    events, output, code, _ = relay(actor)
    assert code not in (0, None)
    assert b"agent exploded on purpose" in output
    assert [e.status for e in events if isinstance(e, Ended)] == ["failed"]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"num_cpus": 0}, "num_cpus=0"),
        ({"local_num_cpus": 0}, "local_num_cpus=0"),
        ({"batch_bytes": 0}, "batch_bytes=0"),
        ({"backpressure": 0}, "backpressure=0"),
        ({"runtime_env": ["pip"]}, "runtime_env must be a dict"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], named: str) -> None:
    from nbtrain.dispatch.ray_backend import RayBackend

    with pytest.raises(ValueError, match=named):
        RayBackend(**kwargs)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_without_ray_the_error_says_how_to_install_it() -> None:
    done = run_python(
        "import sys; sys.modules['ray'] = None\n"
        "from nbtrain.dispatch.ray_backend import RayBackend\n"
        "try:\n    RayBackend()\nexcept ImportError as exc:\n    print(exc)\n"
    )
    assert done.returncode == 0, done.stderr
    assert 'pip install "nbtrain[ray]"' in done.stdout


def test_the_reaper_refuses_a_bad_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nbtrain.dispatch.ray_reaper"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "usage" in done.stderr


@pytest.mark.slow
def test_nothing_imports_ray_unless_the_backend_is_used(db: Path) -> None:
    done = run_python(
        "import sys, nbtrain\n"
        "from nbtrain.dispatch.backend import resolve_backend\n"
        "import nbtrain.dispatch.ray_backend, nbtrain.cli\n"
        "assert resolve_backend('local').name == 'local'\n"
        "run = nbtrain.launch(dict(env_id='FrozenLake-v1', episodes=2, workers=1),\n"
        "                     db='isolation.sqlite')\n"
        "assert run.wait(timeout=120) == {'000001': 'completed'}\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
