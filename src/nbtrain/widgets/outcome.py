"""How a run ended, in one line ("completed in 2.1 s", "3 failed: ValueError: …"): shown
by the dashboard and next to the form's Launch button, computed once, here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nbtrain.statuses import FINAL_STATUSES

FINAL = FINAL_STATUSES  # the run's own vocabulary (nbtrain.dispatch.session), not restated


def format_duration(seconds: float) -> str:
    """``2.1 s``, ``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def first_line(text: Any) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[0] if lines else ""


def outcome_text(workers: Iterable[Mapping[str, Any]]) -> str | None:
    """One line for a run whose workers have all ended; None while any still goes.

    Each worker is a mapping with ``status`` and, when known, ``error``, ``started_at``
    and ``ended_at`` (seconds since the epoch).
    """
    rows = list(workers)
    if not rows or any(r.get("status") not in FINAL for r in rows):
        return None
    starts = [float(r["started_at"]) for r in rows if r.get("started_at") is not None]
    ends = [float(r["ended_at"]) for r in rows if r.get("ended_at") is not None]
    took = f" in {format_duration(max(ends) - min(starts))}" if starts and ends else ""
    failed = [r for r in rows if r["status"] == "failed"]
    stopped = [r for r in rows if r["status"] == "stopped"]
    if failed:
        reason = next((first_line(r.get("error")) for r in failed if r.get("error")), "")
        text = f"{len(failed)} failed" + (f": {reason}" if reason else "")
        others = len(rows) - len(failed)
        if others:
            plural = "s" if others > 1 else ""
            text += f" ({others} other{plural} {'ended' if stopped else 'completed'})"
        return text
    if stopped:
        return f"stopped{took} ({len(stopped)} of {len(rows)} stopped)"
    return f"completed{took}"
