"""Process widget messages while a cell is blocked (``Run.wait()`` calls this every ~50 ms).

A Jupyter kernel handles comm messages (a click on Stop) only between cells. ipykernel 7
reads the shell socket on its own thread and forwards messages meant for the main shell
through an in-process socket pair that the main thread's event loop drains, so while a cell
blocks that loop, messages wait there. :func:`process_ui_events` drains that socket from the
blocked cell: comm messages are handled at once, exactly as ipykernel itself does for an
async cell (``dispatch_shell(..., concurrent=True)``: no busy/idle status, the cell's output
parent restored afterwards); every other message (the next cell's ``execute_request``, a
completion request) is handed back to the event loop in arrival order, and runs after the
cell as it would have. Outside a kernel, off the main thread, on an ipykernel without the
shell-channel thread, or when anything here is not as expected, it does nothing.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

__all__ = ["process_ui_events", "ui_events_supported"]

_COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})
_MAX_MESSAGES = 100  # per call, so a flood of comm traffic cannot starve the cell
_busy = threading.Lock()
_pending: set[asyncio.Future[Any]] = set()  # strong references until the tasks finish


def _kernel() -> Any | None:
    module = sys.modules.get("ipykernel.kernelbase")
    if module is None:
        return None
    kernel_cls = module.Kernel
    if not kernel_cls.initialized():
        return None
    return kernel_cls.instance()


def _main_pair(kernel: Any) -> Any | None:
    """The socket pair carrying main-shell messages, if this kernel has one and we may read it."""
    channel = getattr(kernel, "shell_channel_thread", None)
    manager = getattr(channel, "manager", None)
    pair = getattr(manager, "_shell_channel_to_main", None)
    if pair is None or getattr(pair, "to_socket", None) is None:
        return None
    if threading.current_thread() is not getattr(manager, "_parent_thread", None):
        return None
    return pair


def ui_events_supported() -> bool:
    """True when :func:`process_ui_events` can do its work here (a kernel, its main thread)."""
    kernel = _kernel()
    return kernel is not None and _main_pair(kernel) is not None


def process_ui_events() -> int:
    """Handle pending widget (comm) messages now; returns how many were handled."""
    kernel = _kernel()
    if kernel is None:
        return 0
    pair = _main_pair(kernel)
    if pair is None or not _busy.acquire(blocking=False):
        return 0
    try:
        return _drain(kernel, pair)
    finally:
        _busy.release()


def _drain(kernel: Any, pair: Any) -> int:
    import zmq

    socket = pair.to_socket
    handled = 0
    for _ in range(_MAX_MESSAGES):
        try:
            frames = socket.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            break
        except zmq.ZMQError:
            break
        msg_type = _msg_type(kernel, frames)
        if msg_type in _COMM_TYPES:
            _handle_comm(kernel, frames)
            handled += 1
        else:
            _defer(kernel, frames)
    return handled


def _msg_type(kernel: Any, frames: list[Any]) -> str | None:
    try:
        _, rest = kernel.session.feed_identities(frames, copy=False)
        header = kernel.session.deserialize(rest, content=False, copy=False)["header"]
        return str(header.get("msg_type"))
    except Exception:
        return None


def _handle_comm(kernel: Any, frames: list[Any]) -> None:
    """Run the comm handler now with the comm message as parent, then restore the cell's."""
    parent = kernel.get_parent("shell")
    ident = kernel._get_shell_context_var(kernel._shell_parent_ident)
    try:
        idents, rest = kernel.session.feed_identities(frames, copy=False)
        msg = kernel.session.deserialize(rest, content=True, copy=False)
        handler = kernel.shell_handlers.get(msg["header"]["msg_type"])
        if handler is None:
            return
        kernel.set_parent(idents, msg, channel="shell")
        stream = kernel.shell_channel_thread.manager.get_subshell_to_shell_channel_socket(None)
        result = handler(stream, idents, msg)
        if asyncio.iscoroutine(result):
            _finish_soon(result)
    except Exception:
        kernel.log.error("nbtrain: comm message handling failed", exc_info=True)
    finally:
        kernel.set_parent(ident, parent, channel="shell")


def _finish_soon(coro: Any) -> None:
    try:
        task = asyncio.get_running_loop().create_task(coro)
    except RuntimeError:
        coro.close()
        return
    _pending.add(task)
    task.add_done_callback(_pending.discard)


def _defer(kernel: Any, frames: list[Any]) -> None:
    """Give a non-comm message back to the main loop; it runs after the current cell.

    Callbacks scheduled here run before the loop next polls the socket, so messages keep
    their order; ``shell_main`` then waits for the cell's lock like any other message.
    """
    loop = kernel.io_loop

    def dispatch() -> None:
        task = asyncio.ensure_future(kernel.shell_main(None, frames))
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    loop.add_callback(dispatch)
