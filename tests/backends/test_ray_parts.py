"""The Ray backend's parts without a cluster where they can be: the actor class is plain
Python (Ray only wraps it), so it runs a real worker in this process here; its in-memory
pipe; bad arguments, a missing Ray, and Ray never imported unless this backend is used."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

import nbtrain
from nbtrain.dispatch.outbox import STDERR, STDOUT, TELEMETRY, Outbox, capture
from nbtrain.dispatch.ray_actor import WorkerActor
from nbtrain.wire.codec import FrameDecoder
from nbtrain.wire.events import Ended, Episodes, Event, Started
from nbtrain.worker.sinks import TelemetryClosedError
from tests.kit.backends import config, slow


def relay(actor: WorkerActor) -> tuple[list[Event], bytes, bytes, int | None, int]:
    """Everything the actor streams: events, stdout, stderr, exit code, batch count."""
    decoder = FrameDecoder()
    events: list[Event] = []
    stdout = stderr = b""
    code = None
    batches = 0
    for telemetry, out, err, last in actor.stream(batch_bytes=4096, batch_seconds=0.02):
        batches += 1
        events += [e for e in decoder.feed(telemetry) if not isinstance(e, Exception)]
        stdout += out
        stderr += err
        code = last
    return events, stdout, stderr, code, batches


@pytest.fixture
def host(db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., WorkerActor]]:
    """Make actors in this process (no Ray), and undo what an actor does to its process:
    WORKER_ID, sys.path, the working directory (``db`` restores it), the GC settings."""
    monkeypatch.setenv("WORKER_ID", "")
    monkeypatch.setattr(sys, "path", list(sys.path))
    threshold = gc.get_threshold()
    streams = (sys.stdout, sys.stderr)
    made: list[WorkerActor] = []

    def make(cfg: nbtrain.TrainConfig, **fields: Any) -> WorkerActor:
        run_id = nbtrain.new_run_id()
        wc = cfg.worker_configs(run_id=run_id, run_dir=str(db.parent))[0]
        wc = msgspec.structs.replace(wc, **fields)
        actor = WorkerActor(msgspec.json.encode(wc), wc.worker_id, str(db.parent), str(db.parent))
        made.append(actor)
        return actor

    yield make
    for actor in made:
        actor.outbox.close()
        actor.flag.request("test over")
        actor._thread.join(30)
    assert (sys.stdout, sys.stderr) == streams, "the actor gave the streams back"
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_the_actor_streams_a_whole_worker_in_batches(host: Callable[..., WorkerActor]) -> None:
    before = sys.stdout
    actor = host(config(episodes=40, workers=1))
    assert actor.info()["pid"] == os.getpid(), "the worker runs in the actor's own process"
    events, _, _, code, batches = relay(actor)
    assert code == 0
    assert batches > 1
    ended = [e for e in events if isinstance(e, Ended)]
    assert [e.status for e in ended] == ["completed"]
    assert [ep for e in events if isinstance(e, Episodes) for ep in e.ep_index] == list(range(40))
    started = [e for e in events if isinstance(e, Started)]
    assert started[0].pid == os.getpid()
    assert sys.stdout is before, "sys.stdout is given back once the worker ended"
    assert next(iter(actor.stream()), None) is None, "nothing after the last batch"


def test_the_actor_stops_its_worker(host: Callable[..., WorkerActor]) -> None:
    actor = host(slow(workers=1))
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(relay(actor)))
    thread.start()
    actor.stop()
    thread.join(60)
    events, _, _, code, _ = result[0]
    assert code == 0
    assert [e.status for e in events if isinstance(e, Ended)] == ["stopped"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_through_the_actor_stops_like_one_to_a_process(
    host: Callable[..., WorkerActor], signum: int
) -> None:
    actor = host(slow(workers=1))
    actor.signal(signum)
    events, _, _, code, _ = relay(actor)
    assert code == 0
    assert [e.status for e in events if isinstance(e, Ended)] == ["stopped"]
    assert actor.flag.reason == signal.Signals(signum).name


def test_agent_output_and_a_raising_agent_reach_the_stream(
    host: Callable[..., WorkerActor],
) -> None:
    actor = host(
        config(
            env_id="CliffWalking-v1",
            env_kwargs={},
            agent="pipeline_agents:Raises",
            agent_kwargs={"fail_at": 3},
            workers=1,
        )
    )
    events, _, stderr, code, _ = relay(actor)
    assert code == 1
    assert b"agent exploded on purpose" in stderr
    assert b"Traceback" in stderr
    ended = [e for e in events if isinstance(e, Ended)]
    assert [e.status for e in ended] == ["failed"]
    assert "agent exploded on purpose" in (ended[0].traceback or "")


def test_prints_from_the_agent_are_its_stdout_and_stderr(
    host: Callable[..., WorkerActor],
) -> None:
    actor = host(config(agent="pipeline_agents:Chatty", episodes=2, workers=1))
    _, stdout, stderr, code, _ = relay(actor)
    assert code == 0
    assert b"x" * 10_000 in stdout
    assert b"e" * 1_000 in stderr
    assert b"x" * 100 not in stderr


def test_an_agent_calling_sys_exit_gives_its_code(host: Callable[..., WorkerActor]) -> None:
    actor = host(config(agent="backend_agents:Exits", agent_kwargs={"at": 3}, workers=1))
    events, _, stderr, code, _ = relay(actor)
    assert code == 3
    assert b"exiting on purpose" in stderr
    assert not [e for e in events if isinstance(e, Ended)], "no end reported, as for a process"


def test_a_bad_config_is_exit_code_2_with_one_line(host: Callable[..., WorkerActor]) -> None:
    actor = host(config(workers=1), episodes=0)
    events, _, stderr, code, _ = relay(actor)
    assert code == 2
    assert events == []
    assert b"nbtrain.worker: error:" in stderr
    assert b"episodes=0 must be >= 1" in stderr


def test_a_reader_that_goes_away_ends_the_worker_quietly(
    host: Callable[..., WorkerActor],
) -> None:
    actor = host(slow(workers=1))
    stream = actor.stream(batch_bytes=64, batch_seconds=0.01)
    assert next(stream)[0], "telemetry flows"
    stream.close()  # what Ray does when the kernel's generator is gone
    actor._thread.join(30)
    assert not actor._thread.is_alive()
    assert actor.flag.stop


# -- the outbox (the in-memory pipe between the worker thread and the stream) ----------------


def test_the_outbox_batches_by_size_and_by_age() -> None:
    box = Outbox()
    box.put(TELEMETRY, b"a" * 100)
    box.put(STDERR, b"err")
    assert box.take(batch_bytes=50, batch_seconds=60) == (b"a" * 100, b"", b"err", None)
    box.put(STDOUT, b"out")
    t0 = time.monotonic()
    assert box.take(batch_bytes=50, batch_seconds=0.05) == (b"", b"out", b"", None)
    assert time.monotonic() - t0 >= 0.04, "a small batch waits for its age"
    box.end(7)
    assert box.take(batch_bytes=50, batch_seconds=60) == (b"", b"", b"", 7)
    assert box.take(batch_bytes=50, batch_seconds=60) is None


def test_a_full_outbox_blocks_its_writer_until_the_reader_takes() -> None:
    box = Outbox(limit=10)
    box.put(TELEMETRY, b"x" * 10)
    wrote = threading.Event()

    def write() -> None:
        box.put(TELEMETRY, b"y")
        wrote.set()

    threading.Thread(target=write, daemon=True).start()
    assert not wrote.wait(0.2), "a full outbox holds its writer back (backpressure)"
    assert box.take(batch_bytes=1, batch_seconds=1)[0] == b"x" * 10
    assert wrote.wait(10)


def test_a_closed_outbox_fails_its_writers() -> None:
    box = Outbox(limit=1)
    box.put(TELEMETRY, b"x")
    failed: list[BaseException] = []

    def write() -> None:
        try:
            box.put(TELEMETRY, b"y")
        except TelemetryClosedError as exc:
            failed.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    box.close()
    thread.join(10)
    assert failed, "a writer blocked on a full outbox is released with an error"
    with pytest.raises(TelemetryClosedError):
        box.put(STDOUT, b"z")
    capture(box, STDOUT).write("dropped quietly\n")  # print() never fails the agent


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"num_cpus": 0}, "num_cpus=0"),
        ({"local_num_cpus": 0}, "local_num_cpus=0"),
        ({"batch_bytes": 0}, "batch_bytes=0"),
        ({"backpressure": 0}, "backpressure=0"),
        ({"connect_timeout": 0}, "connect_timeout=0"),
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


def test_a_remote_stop_without_a_reachable_cluster_is_a_run_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: with no Ray cluster to join, stop_worker() ended in Ray's raw
    ConnectionError traceback. (Simulated: "auto" joins any cluster running on the machine,
    so no cluster cannot be guaranteed here; Ray raises ConnectionError when there is none.)"""
    ray = pytest.importorskip("ray")
    from nbtrain.dispatch.ray_backend import stop_worker

    def no_cluster(*_: Any, **__: Any) -> None:
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(nbtrain.RunError, match=r"no Ray cluster at address='auto'.*RAY_ADDRESS"):
        stop_worker("01M8R9V660MMEJJABQ56EF7PZS", "000001")
