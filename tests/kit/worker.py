"""Run ``python -m nbtrain.worker`` for real: own pipes, pass_fds, env vars, drained output."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbtrain
from nbtrain.dispatch.runfiles import write_worker_config
from nbtrain.ids import new_run_id
from nbtrain.wire.codec import FrameDecoder, encode_frame
from nbtrain.wire.events import Episodes, StepRows, Stop, Stored
from nbtrain.worker.config_file import AgentRef, TelemetrySpec, WorkerConfig

# The test agents workers import (tests/worker/worker_agents.py).
AGENTS = Path(__file__).resolve().parents[1] / "worker"
SRC = Path(nbtrain.__file__).resolve().parents[1]


def make_config(tmp_path: Path, name: str = "worker.json", **fields: Any) -> Path:
    """Write a worker config (FrozenLake, q_learning, 3 episodes unless overridden)."""
    values: dict[str, Any] = {
        "run_id": new_run_id(),
        "worker_id": "000001",
        "env_id": "FrozenLake-v1",
        "agent": AgentRef(kind="builtin", name="q_learning"),
        "episodes": 3,
        "seed": 7,
        "max_steps_per_episode": 100,
    }
    if isinstance(fields.get("telemetry"), dict):
        fields["telemetry"] = TelemetrySpec(**fields["telemetry"])
    if isinstance(fields.get("agent"), str):
        fields["agent"] = AgentRef(kind="import", name=f"worker_agents:{fields['agent']}")
    values.update(fields)
    path = tmp_path / name
    write_worker_config(WorkerConfig(**values), path)
    return path


def worker_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("WORKER_ID", None)
    env.pop("NBTRAIN_TELEMETRY_FD", None)
    env.pop("NBTRAIN_CONTROL_FD", None)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([str(AGENTS), str(SRC), *([old] if old else [])])
    env.update(extra)
    return env


@dataclass
class Result:
    code: int
    events: list[Any]
    errors: list[Any]
    stdout: bytes
    stderr: bytes
    wire: list[Any] = field(default_factory=list)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def types(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


@dataclass
class WorkerHandle:
    popen: subprocess.Popen[bytes]
    control_w: int | None
    events: list[Any] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)
    wire: list[Any] = field(default_factory=list)  # the events as sent (Episodes batches)
    out: dict[str, bytes] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)
    first_event: threading.Event = field(default_factory=threading.Event)
    control_lock: threading.Lock = field(default_factory=threading.Lock)

    def send_stop(self) -> None:
        assert self.control_w is not None
        os.write(self.control_w, encode_frame(Stop()))

    def acknowledge(self, episodes: int) -> None:
        """What the kernel sends once it has committed the worker's episodes."""
        with self.control_lock:
            if self.control_w is not None:
                with contextlib.suppress(OSError):
                    os.write(self.control_w, encode_frame(Stored(episodes=episodes)))

    def close_control(self) -> None:
        with self.control_lock:
            if self.control_w is not None:
                os.close(self.control_w)
                self.control_w = None

    def of(self, kind: type) -> list[Any]:
        return [e for e in list(self.events) if isinstance(e, kind)]

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> None:
        """Block until some received event satisfies ``predicate``."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(predicate(e) for e in list(self.events)):
                return
            if self.popen.poll() is not None and not any(t.is_alive() for t in self.threads):
                break
            time.sleep(0.01)
        raise AssertionError(f"no matching event; got {[type(e).__name__ for e in self.events]}")

    def wait(self, timeout: float = 60.0) -> Result:
        try:
            code = self.popen.wait(timeout)
        finally:
            if self.popen.poll() is None:
                self.popen.kill()
            self.close_control()
        for thread in self.threads:
            thread.join(10)
        out = self.out
        return Result(code, self.events, self.errors, out["stdout"], out["stderr"], self.wire)


def start_worker(
    config: Path,
    worker_id: str | None = "000001",
    *,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    telemetry: bool = True,
    control: bool = True,
    acknowledge: bool = True,
    preexec: Any = None,
) -> WorkerHandle:
    """Start a worker the way the dispatcher does (own session, pipes in pass_fds);
    ``preexec`` runs in the child before exec (e.g. to set a resource limit). With
    ``acknowledge`` each received batch of episodes is answered as if stored at once, as
    the kernel does once it has committed them."""
    environment = env if env is not None else worker_env()
    fds: list[int] = []
    telemetry_r = control_w = None
    if telemetry:
        telemetry_r, telemetry_w = os.pipe()
        fds.append(telemetry_w)
        environment["NBTRAIN_TELEMETRY_FD"] = str(telemetry_w)
    if control:
        control_r, control_w = os.pipe()
        fds.append(control_r)
        environment["NBTRAIN_CONTROL_FD"] = str(control_r)
    cmd = [sys.executable, "-m", "nbtrain.worker", "--config", str(config)]
    if worker_id is not None:
        cmd += ["--worker-id", worker_id]
    popen = subprocess.Popen(
        [*cmd, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=fds,
        env=environment,
        start_new_session=True,
        preexec_fn=preexec,
    )
    for fd in fds:
        os.close(fd)
    handle = WorkerHandle(popen, control_w)

    def drain(name: str, stream: Any) -> None:
        handle.out[name] = stream.read()

    def read_telemetry(fd: int) -> None:
        decoder = FrameDecoder()
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while data := pipe.read(65536):
                for item in decoder.feed(data):
                    if isinstance(item, Exception):
                        handle.errors.append(item)
                    else:
                        handle.wire.append(item)
                        # Tests read finished episodes one by one, as a person would, and
                        # steps as columns, as the kernel does (``wire`` has what was sent).
                        if isinstance(item, Episodes):
                            handle.events.extend(item.expand())
                            if acknowledge and len(item):
                                handle.acknowledge(max(item.ep_index) + 1)
                        elif isinstance(item, StepRows):
                            handle.events.append(item.to_steps())
                        else:
                            handle.events.append(item)
                    handle.first_event.set()
        handle.errors.extend(decoder.close())

    threads = [
        threading.Thread(target=drain, args=("stdout", popen.stdout)),
        threading.Thread(target=drain, args=("stderr", popen.stderr)),
    ]
    if telemetry_r is not None:
        threads.append(threading.Thread(target=read_telemetry, args=(telemetry_r,)))
    for thread in threads:
        thread.daemon = True
        thread.start()
    handle.threads = threads
    return handle


def run_worker(config: Path, worker_id: str | None = "000001", **kw: Any) -> Result:
    return start_worker(config, worker_id, **kw).wait()
