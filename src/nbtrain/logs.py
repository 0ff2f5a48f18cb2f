"""Structured logging: every record carries a ``code`` from :mod:`nbtrain.log_codes` and the
``run_id`` / ``worker_id`` it concerns, as ``extra`` attributes a handler can filter on."""

from __future__ import annotations

import logging
from typing import Any

from nbtrain.log_codes import ALL_CODES

logger = logging.getLogger("nbtrain")
# A library never prints on its own: without this, WARNINGs reach stderr through logging's
# last-resort handler (and would show up as stderr in notebook cells).
logger.addHandler(logging.NullHandler())


def log(
    level: int,
    code: str,
    message: str,
    *args: object,
    run_id: str | None = None,
    worker_id: str | None = None,
    exc_info: bool = False,
    **fields: Any,
) -> None:
    """Log ``message % args`` with its code and identifiers; unknown codes are a bug."""
    if code not in ALL_CODES:
        raise ValueError(f"unknown log code {code!r}")
    if not logger.isEnabledFor(level):
        return
    extra = {"code": code, "run_id": run_id, "worker_id": worker_id, **fields}
    logger.log(level, f"[{code}] {message}", *args, extra=extra, exc_info=exc_info, stacklevel=2)
