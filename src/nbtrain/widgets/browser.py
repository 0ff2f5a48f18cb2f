"""``RunBrowser``: the runs of a database as a sortable, paged table; one selected run opens
its ``RunDashboard`` below, several overlay their learning curves; Archive and Delete go
through a confirm step that shows the per-worker summary.

It is an ``ipywidgets.VBox`` of the table (an anywidget, ``RunTable``) and a detail box that
holds the dashboard, so the dashboard is an ordinary child widget. A kernel-side thread polls
``PRAGMA data_version`` every ``poll_interval`` seconds and pushes a new page only when the
database changed (or a shown run is live, so that a dead owner's workers turn ``failed``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets
import traitlets

from nbtrain.log_codes import LOG_UI_DASHBOARD_CALLBACK_ERROR
from nbtrain.widgets._common import RequestWidget, bundle_trait, reject_unknown_kwargs
from nbtrain.widgets.browser_data import SORT_KEYS, RunIndex, overlay
from nbtrain.widgets.retention import archive_target, confirm_summary, default_archive, in_thread

if TYPE_CHECKING:
    from nbtrain.widgets.dashboard import RunDashboard

POLL_INTERVAL = 1.0


class RunTable(RequestWidget):
    """The table view of :class:`RunBrowser` (one page of rows travels as synced state)."""

    # a trait, not a path: anywidget keeps a widget given a path alive (docs/widgets.md)
    _esm = bundle_trait("browser.js")
    _css = bundle_trait("browser.css")
    _log_code = LOG_UI_DASHBOARD_CALLBACK_ERROR

    db = traitlets.Unicode("").tag(sync=True)
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    page_size = traitlets.Int(25).tag(sync=True)
    sort = traitlets.Unicode("created").tag(sync=True)
    descending = traitlets.Bool(True).tag(sync=True)
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)
    overlay = traitlets.Dict().tag(sync=True)
    archive_to = traitlets.Unicode("").tag(sync=True)

    @traitlets.validate("sort")
    def _valid_sort(self, proposal: Any) -> str:
        value = str(proposal["value"])
        if value not in SORT_KEYS:
            raise traitlets.TraitError(f"cannot sort by {value!r}; columns: {', '.join(SORT_KEYS)}")
        return value

    @traitlets.validate("page_size")
    def _valid_page_size(self, proposal: Any) -> int:
        value = int(proposal["value"])
        if not 1 <= value <= 500:
            raise traitlets.TraitError(f"page_size must be 1..500, not {value}")
        return value


class RunBrowser(ipywidgets.VBox):  # type: ignore[misc]
    """``RunBrowser(db="nbtrain.sqlite")``: browse, compare, archive and delete runs."""

    def __init__(
        self,
        db: str | os.PathLike[str] = "nbtrain.sqlite",
        *,
        page_size: int = 25,
        poll_interval: float = POLL_INTERVAL,
        archive_to: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        reject_unknown_kwargs(
            "RunBrowser", kwargs, ("db", "page_size", "poll_interval", "archive_to")
        )
        from nbtrain.store.files import existing_db

        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0 seconds, not {poll_interval!r}")
        path = existing_db(db)  # a mistyped path is an error, not a new empty database
        self._index = RunIndex(path)
        self._db = path
        self.table = RunTable(
            db=str(path),
            page_size=page_size,
            archive_to=str(archive_to if archive_to is not None else default_archive(path)),
        )
        self.detail = ipywidgets.VBox()
        super().__init__(children=[self.table, self.detail])
        self.add_class("nbt-run-browser")
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._dashboard: RunDashboard | None = None
        self._version = self._index.data_version()
        self.refresh()
        self.table.observe(self._on_view, names=["page", "page_size", "sort", "descending"])
        self.table.observe(self._on_selected, names=["selected"])
        self.table._handlers.update(
            summary=self._summary, delete=self._delete, archive=self._archive
        )
        self._interval = float(poll_interval)
        self._poller = threading.Thread(target=self._poll, name="nbtrain-run-browser", daemon=True)
        self._poller.start()

    # -- public ----------------------------------------------------------------------------
    @property
    def db(self) -> Path:
        return self._db

    @property
    def selected(self) -> list[str]:
        return list(self.table.selected)

    def select(self, run_ids: str | list[str]) -> None:
        """Select runs as a click would: one opens its dashboard, several overlay curves.

        Raises ``UnknownRunError`` for an id that is not a run of the database (nothing is
        selected then), where a click could only pick listed runs."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        if any(r not in self._index.run_ids for r in ids):
            self.refresh()  # a run made since the last poll
        unknown = [r for r in ids if r not in self._index.run_ids]
        if unknown:
            from nbtrain.errors import UnknownRunError

            raise UnknownRunError(
                f"no run {unknown[0]!r} in {self._db}", run_id=unknown[0], path=self._db
            )
        self.table.selected = ids

    @property
    def dashboard(self) -> RunDashboard | None:
        return self._dashboard

    def refresh(self) -> None:
        """Re-read the page (also done by the poll thread whenever the database changes)."""
        with self._lock:
            t = self.table
            total, rows = self._index.page(t.sort, t.descending, t.page, t.page_size)
            last = max(0, (total - 1) // t.page_size)
            if t.page > last:  # the last page emptied (runs deleted): show the new last one
                t.page = last
                total, rows = self._index.page(t.sort, t.descending, t.page, t.page_size)
            if rows != t.rows or total != t.total:
                with t.hold_sync():
                    t.rows = rows
                    t.total = total
            kept = [r for r in t.selected if r in self._index.run_ids]
            if kept != list(t.selected):  # deleted or archived elsewhere: deselect
                t.selected = kept

    def close(self) -> None:
        closed = getattr(self, "_closed", None)
        if closed is not None:
            closed.set()
        poller = getattr(self, "_poller", None)
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=2)
        if hasattr(self, "_dashboard"):
            self._set_dashboard(None)
        if hasattr(self, "table"):
            self.table.close()
            self._index.close()
        super().close()

    def __repr__(self) -> str:
        return f"RunBrowser(db={str(self._db)!r}, runs={self.table.total})"

    # -- reactions -------------------------------------------------------------------------
    def _poll(self) -> None:
        while not self._closed.wait(self._interval):
            try:
                version = self._index.data_version()
                shown = [r["run_id"] for r in self.table.rows] + list(self.table.selected)
                if version != self._version or self._index.any_live(shown):
                    self._version = version
                    self.refresh()
                    if len(self.table.selected) > 1 and self._index.any_live(self.table.selected):
                        self._show_overlay(list(self.table.selected))
            except Exception as err:  # shown in the widget, then keep polling
                self.table.report_error("refresh", err)
                self._closed.wait(5 * self._interval)

    def _on_view(self, _change: Any) -> None:
        try:
            self.refresh()
        except Exception as err:
            self.table.report_error("refresh", err)

    def _on_selected(self, change: Any) -> None:
        run_ids = list(change["new"])
        try:
            if len(run_ids) == 1:
                if self._dashboard is None or self._dashboard.run_id != run_ids[0]:
                    from nbtrain.widgets.dashboard import RunDashboard

                    self._set_dashboard(RunDashboard(run_ids[0], db=self._db))
                self.table.overlay = {}
            else:
                self._set_dashboard(None)
                if len(run_ids) > 1:
                    self._show_overlay(run_ids)
                else:
                    self.table.overlay = {}
        except Exception as err:
            self.table.report_error("select", err)

    def _show_overlay(self, run_ids: list[str]) -> None:
        names = {r["run_id"]: r["name"] for r in self.table.rows}
        missing = [r for r in run_ids if r not in names]
        if missing:
            frame = self._index.store.runs()
            names.update(zip(frame["run_id"], frame["name"].fillna(""), strict=True))
        self.table.overlay = overlay(self._index.store, names, run_ids)

    def _set_dashboard(self, dashboard: RunDashboard | None) -> None:
        old, self._dashboard = self._dashboard, dashboard
        if hasattr(self, "detail"):
            self.detail.children = () if dashboard is None else (dashboard,)
        if old is not None and old is not dashboard:
            old.close()

    # -- requests from the view ------------------------------------------------------------
    def _summary(self, params: dict[str, Any], _buffers: list[bytes]) -> Any:
        """What the confirm step shows: the per-worker summary and what would go."""
        return confirm_summary(self._index.store, self._db, str(params.get("run_id", "")))

    def _delete(self, params: dict[str, Any], _buffers: list[bytes]) -> Any:
        run_id = str(params.get("run_id", ""))
        return in_thread(
            self.table,
            params["id"],
            "delete",
            run_id,
            lambda: self._index.store.delete_run(run_id),
            lambda _counts: self._forget(run_id),
        )

    def _archive(self, params: dict[str, Any], _buffers: list[bytes]) -> Any:
        run_id = str(params.get("run_id", ""))
        target = archive_target(self._db, str(params.get("to") or self.table.archive_to))
        self.table.archive_to = str(target)
        return in_thread(
            self.table,
            params["id"],
            "archive",
            run_id,
            lambda: self._index.store.archive_run(run_id, to=target),
            lambda _counts: self._forget(run_id),
        )

    def _forget(self, run_id: str) -> None:
        if run_id in self.table.selected:
            self.table.selected = [r for r in self.table.selected if r != run_id]
        self.refresh()


__all__ = ["RunBrowser", "RunTable"]
