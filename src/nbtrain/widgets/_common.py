"""What the three widgets share: the bundle location, keyword checking, the request/response
protocol over custom widget messages, and the error area.

Requests from the view are ``{"kind": "request", "id", "method", "params"}``; every request
gets exactly one ``{"kind": "response", "id", "ok", "result" | "error"}`` (see
docs/widgets.md). A failing handler never disappears into the kernel log: its message lands
in the widget's ``error`` trait, shown under the widget, and is logged with a code.
"""

from __future__ import annotations

import difflib
import logging
import math
import threading
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import anywidget
import numpy as np
import traitlets

from nbtrain.logs import log

STATIC = Path(__file__).resolve().parent.parent / "static"

Handler = Callable[[dict[str, Any], list[bytes]], Any]
T = TypeVar("T")


def bundle_trait(name: str) -> traitlets.Unicode[str, str | bytes]:
    """A bundled file's text as the widget's ``_esm`` / ``_css`` trait.

    Given a path instead, anywidget wraps it in a class-wide ``FileContents`` and connects a
    strong callback per instance to it, so every widget ever made (and through a dashboard
    the run's live state) stayed in memory for the life of the kernel. A trait declared
    here is left alone.
    """
    return traitlets.Unicode((STATIC / name).read_text(encoding="utf-8")).tag(sync=True)


def reject_unknown_kwargs(owner: str, given: Iterable[str], allowed: Iterable[str]) -> None:
    """Raise ``TypeError`` naming each unknown keyword, a close match and what is accepted."""
    allowed = sorted(allowed)
    unknown = [key for key in given if key not in allowed]
    if not unknown:
        return
    key = unknown[0]
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise TypeError(
        f"{owner}() got an unexpected keyword argument {key!r}{hint} "
        f"(accepted: {', '.join(allowed)})"
    )


def finite(value: T) -> T | None:
    """``value``, or None for a float JSON cannot carry (NaN, ±inf): jupyter_client sends
    those as the strings "nan" / "inf", which a view cannot draw, and NaN never equals the
    value last sent, so a dashboard would resend it every tick."""
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    return value


class Deferred:
    """Returned by a handler that answers later (from a thread) through ``respond``."""


DEFERRED = Deferred()


class Reply:
    """A handler's result with binary buffers attached (indices are named in the result)."""

    def __init__(self, result: Any, buffers: list[bytes]) -> None:
        self.result = result
        self.buffers = buffers


class RequestWidget(anywidget.AnyWidget):
    """An anywidget that answers requests from its views and shows callback errors."""

    error = traitlets.Unicode("").tag(sync=True)

    _log_code: str = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handlers: dict[str, Handler] = {}
        self._send_lock = threading.Lock()
        self.on_msg(self._on_custom_msg)

    def _send_message(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        """All outgoing custom messages pass here (the traffic benchmark counts them)."""
        with self._send_lock:
            self.send(content, buffers=buffers or None)

    def respond(
        self,
        request_id: str,
        *,
        result: Any = None,
        error: BaseException | None = None,
        buffers: list[bytes] | None = None,
    ) -> None:
        content: dict[str, Any] = {"kind": "response", "id": request_id, "ok": error is None}
        if error is None:
            content["result"] = result
        else:
            content["error"] = {"type": type(error).__name__, "message": str(error)}
        self._send_message(content, buffers)

    def report_error(self, where: str, exc: BaseException, **ids: Any) -> None:
        """Show ``exc`` in the widget's error area and log it with the widget's code."""
        self.error = f"{where}: {type(exc).__name__}: {exc}"
        log(
            logging.ERROR,
            self._log_code,
            "%s failed: %s",
            where,
            "".join(traceback.format_exception_only(type(exc), exc)).strip(),
            **ids,
        )

    def _on_custom_msg(self, _widget: Any, content: Any, buffers: list[bytes]) -> None:
        if not isinstance(content, dict) or content.get("kind") != "request":
            return
        request_id = str(content.get("id", ""))
        method = content.get("method")
        handler = self._handlers.get(method) if isinstance(method, str) else None
        if handler is None:
            known = ", ".join(sorted(self._handlers))
            exc: BaseException = ValueError(f"unknown request method {method!r} (known: {known})")
            self.report_error("request", exc)
            self.respond(request_id, error=exc)
            return
        params = content.get("params") or {}
        try:
            # the request's own id last: params cannot redirect the answer
            result = handler({**params, "id": request_id}, list(buffers or []))
        except Exception as err:
            self.report_error(str(method), err)
            self.respond(request_id, error=err)
            return
        if isinstance(result, Reply):
            self.respond(request_id, result=result.result, buffers=result.buffers)
        elif result is not DEFERRED:
            self.respond(request_id, result=result)
