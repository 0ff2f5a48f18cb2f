"""process_ui_events: a no-op outside a kernel; inside a real ipykernel it lets a widget's
Stop button work while another cell is blocked in ``run.wait()``."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbtrain.jupyter_events import process_ui_events, ui_events_supported


def test_outside_a_kernel_it_does_nothing() -> None:
    assert process_ui_events() == 0
    assert ui_events_supported() is False


class Kernel:
    """A real kernel driven through jupyter_client, as a notebook front-end drives it."""

    def __init__(self, cwd: Path) -> None:
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(cwd))
        self.outputs: dict[str, list[str]] = {}
        self.comm_msgs: list[dict[str, Any]] = []

    def execute(self, code: str) -> str:
        return str(self.kc.execute(code))

    def comm_msg(self, comm_id: str, data: dict[str, Any]) -> None:
        msg = self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        self.kc.shell_channel.send(msg)

    def pump(self, until: Any, timeout: float = 60) -> None:
        """Read iopub until ``until()`` holds."""
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            assert left > 0, f"timed out; outputs so far: {self.outputs}"
            try:
                msg = self.kc.get_iopub_msg(timeout=min(left, 1))
            except queue.Empty:
                continue
            parent = msg["parent_header"].get("msg_id", "")
            kind = msg["msg_type"]
            if kind == "stream":
                self.outputs.setdefault(parent, []).append(msg["content"]["text"])
            elif kind == "error":
                self.outputs.setdefault(parent, []).append("ERROR " + msg["content"]["evalue"])
            elif kind == "comm_msg":
                self.comm_msgs.append(msg["content"]["data"])

    def text(self, msg_id: str) -> str:
        return "".join(self.outputs.get(msg_id, []))

    def reply(self, msg_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") == msg_id:
                return dict(msg)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    pytest.importorskip("jupyter_client")
    pytest.importorskip("ipykernel")
    k = Kernel(tmp_path)
    try:
        yield k
    finally:
        k.close()


SETUP = """
import comm, time
from nbtrain.jupyter_events import process_ui_events, ui_events_supported
got = []
c = comm.create_comm(target_name="nbtrain-test")
c.on_msg(lambda msg: got.append(msg["content"]["data"]))
print("COMM", c.comm_id, ui_events_supported())
"""


@pytest.mark.slow
def test_comm_messages_are_handled_inside_a_blocked_cell_and_cells_keep_their_order(
    kernel: Kernel,
) -> None:
    setup = kernel.execute(SETUP)
    kernel.pump(lambda: "COMM" in kernel.text(setup))
    _, comm_id, supported = kernel.text(setup).split()
    assert supported == "True"
    # Control: a cell that blocks without polling does not see the message until it ends.
    plain = kernel.execute("time.sleep(1.0); print('PLAIN', len(got))")
    kernel.comm_msg(comm_id, {"n": 1})
    kernel.pump(lambda: "PLAIN" in kernel.text(plain))
    assert kernel.text(plain).strip() == "PLAIN 0"
    # With polling the message is handled while the cell is still running...
    blocked = kernel.execute(
        "deadline = time.monotonic() + 30\n"
        "while len(got) < 2 and time.monotonic() < deadline:\n"
        "    process_ui_events(); time.sleep(0.05)\n"
        "print('BLOCKED', len(got))"
    )
    after = kernel.execute("print('AFTER', len(got))")  # queued behind the blocked cell
    time.sleep(0.5)
    kernel.comm_msg(comm_id, {"n": 2})
    kernel.pump(lambda: "AFTER" in kernel.text(after))
    assert kernel.text(blocked).strip() == "BLOCKED 2"
    # ...and the cell queued meanwhile ran after it, not during it.
    assert kernel.text(after).strip() == "AFTER 2"
    assert kernel.reply(blocked)["content"]["status"] == "ok"
    assert kernel.reply(after)["content"]["status"] == "ok"
    last = kernel.execute("print('LAST')")
    kernel.pump(lambda: "LAST" in kernel.text(last))


@pytest.mark.slow
def test_dashboard_stop_works_while_a_cell_waits_for_the_run(kernel: Kernel) -> None:
    setup = kernel.execute(
        "import nbtrain\n"
        "cfg = nbtrain.TrainConfig(env_id='FrozenLake-v1', episodes=10**6, workers=2,"
        " step_delay=0.001)\n"
        "run = nbtrain.launch(cfg, db='x.sqlite')\n"
        "dash = run.dashboard()\n"
        "print('COMM', dash.comm.comm_id)"
    )
    kernel.pump(lambda: "COMM" in kernel.text(setup))
    comm_id = kernel.text(setup).split()[1]
    wait = kernel.execute("print('WAITED', run.wait(timeout=60))")
    time.sleep(0.5)
    request = {"kind": "request", "id": "s1", "method": "stop", "params": {"worker_id": None}}
    kernel.comm_msg(comm_id, {"method": "custom", "content": request})
    kernel.pump(lambda: "WAITED" in kernel.text(wait), timeout=60)
    assert "'000001': 'stopped'" in kernel.text(wait)
    assert "'000002': 'stopped'" in kernel.text(wait)
    kernel.pump(lambda: any(m.get("content", {}).get("id") == "s1" for m in kernel.comm_msgs))
    answer = next(m["content"] for m in kernel.comm_msgs if m.get("content", {}).get("id") == "s1")
    assert answer["ok"] is True
    assert set(answer["result"]["statuses"].values()) == {"stopped"}
