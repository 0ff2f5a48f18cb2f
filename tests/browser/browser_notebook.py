"""Notebooks for the browser tests and a small driver for a notebook open in JupyterLab or
Notebook 7: wait for its kernel, Run All from the menu, re-run one cell, read widget state.

Selectors come from JupyterLab's DOM (``data-jp-item-name``, ``data-command``, ``.jp-Cell``)
and from the widgets' own classes (docs/widgets.md): ``.nbt-form``, ``.nbt-dashboard``,
``.nbt-tab[data-key=…][data-status=…]``, ``.nbt-panel``, ``.nbt-stats``, ``.nbt-chart``.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

if TYPE_CHECKING:  # imported by the tests only once browser_env found playwright
    from playwright.sync_api import Locator, Page

FIRST_RENDER_MS = 60_000  # kernel start + `import nbtrain` + the env catalogue, on 2 busy cores
ACTION_MS = 30_000


def write_notebook(folder: Path, name: str, cells: list[str]) -> str:
    """Write a notebook of code cells for the python3 kernel (so no kernel picker opens)."""
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(s) for s in cells]  # type: ignore[no-untyped-call]
    path = folder / name
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]
    return name


KERNEL_READY_JS = """() => {
  const name = document.querySelector('[data-jp-item-name="kernelName"]');
  const state = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return Boolean(name && !/No Kernel/.test(name.textContent)
                 && state && state.dataset.status === 'idle');
}"""


class NotebookPage:
    """A notebook open in the browser, in JupyterLab (``/lab/tree/…``) or Notebook 7
    (``/notebooks/…``); both share the notebook DOM and the Run menu."""

    def __init__(self, page: Page, base_url: str, name: str, ui: str = "lab") -> None:
        if ui not in ("lab", "notebook"):
            raise ValueError(f"ui must be 'lab' or 'notebook', not {ui!r}")
        self.page = page
        self.ui = ui
        # ``?reset``: a fresh Lab workspace, or Lab would reopen the previous test's notebooks.
        url = f"{base_url}/lab/tree/{name}?reset" if ui == "lab" else f"{base_url}/notebooks/{name}"
        page.goto(url)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=FIRST_RENDER_MS)
        page.wait_for_function(KERNEL_READY_JS, timeout=FIRST_RENDER_MS)

    @property
    def cells(self) -> Locator:
        return self.page.locator(".jp-Notebook .jp-Cell")

    def run_all(self) -> None:
        """Run → Run All Cells, from the menu bar, as a person would."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()

    def rerun_cell(self, index: int) -> None:
        """Select cell ``index`` and press Shift+Enter."""
        self.cells.nth(index).locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Shift+Enter")

    def output(self, index: int) -> Locator:
        return self.cells.nth(index).locator(".jp-OutputArea")

    def wait_output(self, index: int, pattern: str, timeout: float = ACTION_MS) -> str:
        """Wait until cell ``index``'s output matches ``pattern`` (a regex); return the text."""
        locator = self.output(index).filter(has_text=re.compile(pattern))
        locator.wait_for(timeout=timeout)
        return locator.inner_text()

    def prompt(self, index: int) -> str:
        """The cell's execution prompt, e.g. ``[3]:``, or ``[*]:`` while it runs."""
        return self.cells.nth(index).locator(".jp-InputArea-prompt").inner_text().strip()


class Dashboard:
    """A RunDashboard view in the page."""

    def __init__(self, root: Locator) -> None:
        self.root = root

    def tab(self, key: str) -> Locator:
        """A worker tab by worker id, or ``"__all__"`` for the overview."""
        return self.root.locator(f".nbt-tab[data-key='{key}']")

    def tab_keys(self) -> list[str]:
        keys = self.root.locator(".nbt-tab").evaluate_all("els => els.map(e => e.dataset.key)")
        return [str(k) for k in keys]

    def select(self, key: str) -> Locator:
        """Show a tab; returns its panel once it is drawn."""
        self.tab(key).click()
        self.root.locator(f".nbt-tab[data-key='{key}'][aria-selected='true']").wait_for()
        return self.root.locator(".nbt-body .nbt-panel")

    @property
    def panel(self) -> Locator:
        return self.root.locator(".nbt-body .nbt-panel")

    def stat(self, name: str) -> str:
        """A value from the worker panel's statistics (``episodes``, ``steps``, …)."""
        value = self.panel.locator(".nbt-stats").evaluate(
            """(dl, name) => {
              const dt = [...dl.querySelectorAll('dt')].find(e => e.textContent === name);
              return dt ? dt.nextElementSibling.textContent : null;
            }""",
            name,
        )
        if value is None:
            raise AssertionError(f"no {name!r} in the worker panel's statistics")
        return str(value)

    def episodes_done(self) -> int:
        """The worker panel's ``episodes`` counter (``"94 / 3000"`` → 94)."""
        return int(self.stat("episodes").split("/")[0].strip())

    def summary_rows(self) -> dict[str, dict[str, str]]:
        """The overview table, by worker id."""
        rows = self.panel.locator("table.nbt-summary").evaluate(
            """t => {
              const head = [...t.rows[0].cells].map(c => c.textContent);
              return [...t.rows].slice(1).map(r =>
                Object.fromEntries([...r.cells].map((c, i) => [head[i], c.textContent])));
            }"""
        )
        return {row["worker"]: row for row in rows}

    def wait_for(self, predicate: Any, what: str, timeout: float = ACTION_MS / 1000) -> Any:
        """Poll ``predicate()`` (reading the DOM) until it is truthy; fail naming ``what``."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            self.root.page.wait_for_timeout(200)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


# Pixels of a canvas close to an RGB colour (uPlot antialiases, so allow some distance).
COLOUR_PIXELS_JS = """(canvas, rgb) => {
  const ctx = canvas.getContext('2d');
  const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] < 200) continue;
    const dist = Math.abs(d[i] - rgb[0]) + Math.abs(d[i + 1] - rgb[1])
      + Math.abs(d[i + 2] - rgb[2]);
    if (dist < 60) n++;
  }
  return n;
}"""


def colour_pixels(chart: Locator, rgb: tuple[int, int, int]) -> int:
    """How many pixels of a uPlot chart's canvas have (about) this colour."""
    return int(chart.locator("canvas").first.evaluate(COLOUR_PIXELS_JS, list(rgb)))


SERIES_COLOURS_JS = """box => Object.fromEntries(
  [...box.querySelectorAll('.u-legend .u-series')]
    .filter(s => s.querySelector('.u-marker'))
    .map(s => [s.querySelector('.u-label').textContent,
               getComputedStyle(s.querySelector('.u-marker')).borderColor]))"""


def series_colours(chart: Locator) -> dict[str, tuple[int, int, int]]:
    """Each series' colour as its legend shows it (the DOM resolves CSS variables)."""
    found: dict[str, str] = chart.evaluate(SERIES_COLOURS_JS)
    out = {}
    for label, css in found.items():
        numbers = [int(float(n)) for n in re.findall(r"[\d.]+", css)[:3]]
        if len(numbers) == 3:
            out[label] = (numbers[0], numbers[1], numbers[2])
    return out


def chart_size(chart: Locator) -> tuple[float, float]:
    box = chart.locator("canvas").first.bounding_box()
    assert box is not None, "the chart's canvas is not laid out"
    return box["width"], box["height"]


def worker_statuses(db: Path, run_id: str | None = None) -> dict[str, str]:
    """The ground truth: ``workers.status`` from the SQLite file (opened read-only), for one
    run or, when the file holds a single run, for that run."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute("SELECT run_id, worker_id, status FROM workers").fetchall()
    finally:
        con.close()
    runs = {r for r, _, _ in rows}
    if run_id is None and len(runs) > 1:
        raise AssertionError(f"{db.name} holds runs {sorted(runs)}; say which one")
    return {str(w): str(s) for r, w, s in rows if run_id in (None, r)}


def wait_db_statuses(
    db: Path, want: dict[str, str], run_id: str | None = None, timeout: float = 30
) -> dict[str, str]:
    """Wait until the stored statuses include ``want``. The view may show a status before
    the store commits it (at least once a second), so this waits for the writer."""
    deadline = time.monotonic() + timeout
    got: dict[str, str] = {}
    while time.monotonic() < deadline:
        if db.exists():
            got = worker_statuses(db, run_id)
            if all(got.get(k) == v for k, v in want.items()):
                return got
        time.sleep(0.2)
    raise AssertionError(f"{db.name}: workers table says {got}, expected to include {want}")
