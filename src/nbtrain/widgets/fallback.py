"""What a saved notebook shows where a widget cannot be drawn.

A widget's own output carries a text table (``text/plain``, ``text/html``) that nbviewer,
GitHub and nbconvert show. JupyterLab, though, prefers the widget view and, once the kernel
is gone, says "Error displaying widget: model not found" instead. So a dashboard also
displays a *static twin*: a plain HTML output right after it, updated (by display id) when
the run ends. While a kernel serves the widget, its view hides the twin (dashboard.js); in a
notebook reopened without one, the twin is what the reader sees.
"""

from __future__ import annotations

import html
import uuid
from typing import Any

COLUMNS = (
    "worker_id",
    "status",
    "exit_code",
    "episodes",
    "steps",
    "mean_return",
    "last100_return",
)
TWIN_CLASS = "nbtrain-static"


def text_table(rows: list[dict[str, Any]]) -> str:
    cells = [list(COLUMNS)] + [["" if r[c] is None else str(r[c]) for c in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def html_table(caption: str, rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('' if r[c] is None else str(r[c]))}</td>" for c in COLUMNS)
        + "</tr>"
        for r in rows
    )
    return (
        f"<table class='nbtrain-summary'><caption>{html.escape(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def publish(
    data: dict[str, Any],
    metadata: dict[str, Any] | None = None,
    *,
    display_id: str | None = None,
    update: bool = False,
) -> None:
    """Display (or, with ``update``, replace by ``display_id``) a raw mime bundle."""
    from IPython.display import display, update_display

    if update:
        update_display(data, raw=True, display_id=display_id)  # type: ignore[no-untyped-call]
    elif display_id is None:
        display(data, metadata=metadata, raw=True)  # type: ignore[no-untyped-call]
    else:
        display(data, metadata=metadata, raw=True, display_id=display_id)  # type: ignore[no-untyped-call]


class StaticTwin:
    """A plain HTML output shown after a widget, replaceable by its display id."""

    def __init__(self) -> None:
        self.display_id = f"nbtrain-static-{uuid.uuid4().hex}"
        self.shown = False

    @staticmethod
    def bundle(inner_html: str) -> dict[str, str]:
        return {
            "text/html": f"<div class='{TWIN_CLASS}'>{inner_html}</div>",
            "text/plain": "",
        }

    def show(self, inner_html: str) -> None:
        publish(self.bundle(inner_html), display_id=self.display_id)
        self.shown = True

    def update(self, inner_html: str) -> None:
        if self.shown:
            publish(self.bundle(inner_html), display_id=self.display_id, update=True)
