"""The widgets also work in Notebook 7 (``/notebooks/…``, served by the same ``jupyter lab``
command when the ``notebook`` package is installed)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from browser_env import require_playwright
from browser_notebook import (
    FIRST_RENDER_MS,
    Dashboard,
    NotebookPage,
    chart_size,
    colour_pixels,
    series_colours,
    wait_db_statuses,
    write_notebook,
)
from browser_server import LabServer

expect = require_playwright().expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHORT_RUN = "env_id='FrozenLake-v1', episodes=30, workers=2"


def not_notebook7_startup(error: str) -> bool:
    """Notebook 7.6 itself throws once while loading settings, in any notebook, widgets or
    not (``notebook_core``: reading 'schema' of undefined); everything else counts."""
    return not ("reading 'schema'" in error and "/static/notebook/notebook_core." in error)


def test_form_and_dashboard_render_and_work_in_notebook_7(
    lab: LabServer, page: Any, page_errors: list[str], shot: Any
) -> None:
    name = write_notebook(
        lab.root,
        "nb7.ipynb",
        [
            f"import nbtrain\nform = nbtrain.TrainForm(db='nb7.sqlite', {SHORT_RUN})\nform",
            f"run = nbtrain.launch(nbtrain.TrainConfig({SHORT_RUN}), db='nb7.sqlite')\n"
            "run.dashboard()",
        ],
    )
    nb = NotebookPage(page, lab.url, name, ui="notebook")
    # Notebook 7's own shell, not JupyterLab's: no Lab tab bar, a "JupyterLab" switch button.
    assert page.evaluate("document.body.dataset.notebook") == "notebooks"
    assert page.locator("#jp-main-dock-panel").count() == 0
    nb.run_all()

    # The dashboard of a run launched in a cell.
    dash = Dashboard(nb.cells.nth(1).locator(".nbt-dashboard"))
    dash.tab("000002").wait_for(timeout=FIRST_RENDER_MS)
    expect(dash.tab("__all__")).to_have_text("All workers")
    for wid in ("000001", "000002"):
        expect(dash.tab(wid)).to_have_attribute("data-status", "completed")
    dash.select("__all__")
    dash.wait_for(
        lambda: {r["episodes"] for r in dash.summary_rows().values()} == {"30"},
        "both workers' 30 episodes in the overview",
    )
    panel = dash.select("000001")
    expect(panel.locator(".nbt-status")).to_have_text(re.compile(r"^completed · .*exit code 0"))
    assert dash.stat("episodes") == "30 / 30"
    length = panel.locator(".nbt-chart").nth(1)
    dash.wait_for(lambda: int(length.get_attribute("data-points") or 0) > 0, "length curve")
    assert min(chart_size(length)) > 100
    assert colour_pixels(length, series_colours(length)["length"]) > 50
    shot(dash.root, "notebook7-dashboard")

    # The form: prefilled, valid, and its Launch shows a dashboard under it.
    form = nb.cells.nth(0).locator(".nbt-form")
    expect(form.locator(".nbt-workers-preview")).to_have_text("ids: 000001, 000002")
    launch = form.locator(".nbt-launch")
    expect(launch).to_be_enabled()
    shot(form, "notebook7-form")
    launch.click()
    out = form.locator(".nbt-folded .nbt-launch-out")  # the form folded to one line
    expect(out).to_have_text(re.compile(r"launched run \S+ \(000001, 000002\)"))
    run_id = out.inner_text().split()[2]
    form_dash = Dashboard(nb.cells.nth(0).locator(".nbt-dashboard"))
    for wid in ("000001", "000002"):
        expect(form_dash.tab(wid)).to_have_attribute("data-status", "completed")
    want = {"000001": "completed", "000002": "completed"}
    assert wait_db_statuses(lab.root / "nb7.sqlite", want, run_id) == want
    shot(nb.cells.nth(0), "notebook7-form-launched")
    assert list(filter(not_notebook7_startup, page_errors)) == []
