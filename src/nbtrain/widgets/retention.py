"""What the RunBrowser and a dashboard's closure summary share for Keep / Archive / Delete:
the per-worker summary the confirm step shows, where an archive goes, and doing the work
off the kernel's main thread with the answer (or the error) sent to the view.

The work itself is :meth:`TelemetryStore.delete_run` / :meth:`TelemetryStore.archive_run`;
nothing here touches a table.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrain.statuses import FINAL_STATUSES
from nbtrain.widgets._common import DEFERRED, RequestWidget, finite

if TYPE_CHECKING:
    from nbtrain.store import TelemetryStore

SUMMARY_COLUMNS = ["worker_id", "status", "exit_code", "episodes", "steps", "mean_return"]


def default_archive(db: Path) -> Path:
    """``runs.sqlite`` → ``runs-archive.sqlite`` beside it."""
    return db.with_name(f"{db.stem}-archive{db.suffix or '.sqlite'}")


def archive_target(db: Path, to: str) -> Path:
    """The archive file for a typed destination (relative to the database's folder)."""
    if not to.strip():
        raise ValueError("archive needs a destination file")
    target = Path(to.strip()).expanduser()
    return target if target.is_absolute() else db.parent / target


def confirm_summary(store: TelemetryStore, db: Path, run_id: str) -> dict[str, Any]:
    """What the confirm step shows: the per-worker summary and what would go."""
    from nbtrain.store.runfolder import folder_bytes, run_folder

    summary = store.run_summary(run_id)[SUMMARY_COLUMNS].astype({"worker_id": str})
    workers = [
        {k: plain(v) for k, v in record.items()} for record in summary.to_dict(orient="records")
    ]
    live = any(w["status"] not in FINAL_STATUSES for w in workers)
    return {
        "run_id": run_id,
        "workers": workers,
        "live": live,
        "folder_bytes": folder_bytes(run_folder(db, run_id)),
    }


def in_thread(
    widget: RequestWidget,
    request_id: str,
    what: str,
    run_id: str,
    work: Callable[[], dict[str, int]],
    after: Callable[[dict[str, int]], None],
) -> Any:
    """Deleting or archiving a large run takes a while: off the kernel's main thread. An
    error lands in the widget's error area and in the answer to the view."""

    def main() -> None:
        try:
            counts = work()
            after(counts)
        except Exception as err:
            widget.report_error(what, err, run_id=run_id)
            widget.respond(request_id, error=err)
            return
        widget.respond(request_id, result={"run_id": run_id, "counts": counts})

    threading.Thread(target=main, name=f"nbtrain-{what}-{run_id}", daemon=True).start()
    return DEFERRED


def plain(value: Any) -> Any:
    """A summary cell as JSON: NaN and ±inf become None, numpy scalars Python numbers."""
    if isinstance(value, str) or value is None:
        return value
    number = finite(float(value))
    if number is None:
        return None
    return int(number) if number.is_integer() else round(number, 4)


__all__ = ["archive_target", "confirm_summary", "default_archive", "in_thread", "plain"]
