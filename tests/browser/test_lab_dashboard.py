"""TrainForm and RunDashboard in a real JupyterLab: fill the form, launch two workers, watch
them live, stop one from its tab (the database is the ground truth), stop from the dashboard
while a cell waits in ``run.wait()``, and see a failing agent's traceback in its tab."""

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
    worker_statuses,
    write_notebook,
)
from browser_server import LabServer

expect = require_playwright().expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# ~100 steps/s per worker: counters visibly rise within a second, and the run (minutes long)
# outlasts the test, which stops one worker itself; the kernel's shutdown ends the rest.
LONG_RUN = "env_id='FrozenLake-v1', episodes=3000, step_delay=0.01"


def run_id_from(launch_text: str) -> str:
    found = re.search(r"launched run ([0-9A-Z]{26}) \(", launch_text)
    assert found, f"unexpected launch message {launch_text!r}"
    return found.group(1)


def test_form_launches_two_workers_counters_rise_charts_draw_and_stop_one(
    lab: LabServer, page: Any, page_errors: list[str], shot: Any
) -> None:
    name = write_notebook(
        lab.root,
        "train_form.ipynb",
        [
            f"import nbtrain\nform = nbtrain.TrainForm(db='form.sqlite', {LONG_RUN})\nform",
            "print('STATUS', form.run and form.run.status())",
        ],
    )
    nb = NotebookPage(page, lab.url, name)
    nb.run_all()
    form = page.locator(".nbt-form")
    form.locator(".nbt-launch").wait_for(timeout=FIRST_RENDER_MS)
    nb.wait_output(1, r"STATUS None")

    # Two workers: "7" and a blank row (auto); Python echoes the normalized ids.
    form.locator(".nbt-workers-mode input[value='list']").check()
    rows = form.locator(".nbt-worker-row")
    rows.nth(0).locator("input[type='text']").fill("7")
    form.locator(".nbt-add-worker").click()
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator(".nbt-worker-id")).to_have_text("→ 000007")
    expect(rows.nth(1).locator(".nbt-worker-id")).to_have_text("→ 000001 (auto)")
    expect(form.locator(".nbt-launch")).to_be_enabled()
    shot(form, "form-filled")

    form.locator(".nbt-launch").click()
    launched = form.locator(".nbt-folded .nbt-launch-out")
    expect(launched).to_have_text(re.compile(r"launched run \S+ \(000007, 000001\)"))
    run_id = run_id_from(launched.inner_text())

    dash = Dashboard(page.locator(".nbt-dashboard"))
    expect(dash.tab("__all__")).to_have_text("All workers")
    keys = dash.tab_keys()
    assert keys[0] == "__all__"
    assert sorted(keys[1:]) == ["000001", "000007"]
    expect(dash.root.locator(".nbt-title")).to_contain_text(run_id)

    # Overview: both workers running, their episode counters rise.
    overview = dash.select("__all__")
    first = dash.wait_for(
        lambda: (
            (r := dash.summary_rows())
            and all(int(r[w]["episodes"]) > 0 for w in ("000001", "000007"))
            and r
        ),
        "both workers to finish an episode",
    )
    assert {first[w]["status"] for w in first} == {"running"}
    dash.wait_for(
        lambda: int(dash.summary_rows()["000007"]["episodes"]) > int(first["000007"]["episodes"]),
        "worker 000007's episode counter to rise in the overview",
    )
    chart = overview.locator(".nbt-chart").first
    dash.wait_for(lambda: int(chart.get_attribute("data-points") or 0) > 0, "overview curve")
    assert min(chart_size(chart)) > 100
    colours = series_colours(chart)
    for wid in ("000001", "000007"):  # each worker's curve is drawn, in its legend's colour
        dash.wait_for(lambda w=wid: colour_pixels(chart, colours[w]) > 20, f"{wid}'s curve")
    shot(dash.root, "overview-live")

    # Worker 000007's tab: its counters rise, its charts draw.
    panel = dash.select("000007")
    expect(panel.locator(".nbt-status")).to_have_text(re.compile(r"^running · pid \d+"))
    before = dash.wait_for(lambda: dash.episodes_done(), "an episode in 000007's tab")
    dash.wait_for(lambda: dash.episodes_done() > before, "000007's episode counter to rise")
    charts = panel.locator(".nbt-chart")
    expect(charts).to_have_count(2)
    ret_chart, len_chart = charts.nth(0), charts.nth(1)
    for c in (ret_chart, len_chart):
        assert min(chart_size(c)) > 100
    points = dash.wait_for(lambda: int(len_chart.get_attribute("data-points") or 0), "points")
    dash.wait_for(
        lambda: int(len_chart.get_attribute("data-points") or 0) > points,
        "the episode-length curve to grow",
    )
    length_rgb = series_colours(len_chart)["length"]
    assert colour_pixels(len_chart, length_rgb) > 50, "the episode-length line is not drawn"
    shot(dash.root, "worker-000007-live")

    # Stop 000007 from its tab: Python (the database) says stopped; the other goes on.
    panel.locator(".nbt-panel-head .nbt-stop").click()
    expect(panel.locator(".nbt-stop-out")).to_have_text("000007: stopped")
    statuses = wait_db_statuses(lab.root / "form.sqlite", {"000007": "stopped"})
    assert statuses["000001"] == "running"
    expect(dash.tab("000007")).to_have_attribute("data-status", "stopped")
    expect(panel.locator(".nbt-status")).to_have_text(re.compile(r"^stopped · pid \d+"))
    expect(panel.locator(".nbt-panel-head .nbt-stop")).to_be_disabled()
    expect(dash.tab("000001")).to_have_attribute("data-status", "running")
    shot(dash.root, "worker-000007-stopped")

    nb.rerun_cell(1)
    out = nb.wait_output(1, r"'000007': 'stopped'")
    assert "'000001': 'running'" in out

    # The stopped worker's counter is frozen while the other one's still rises.
    dash.select("__all__")
    frozen = dash.summary_rows()
    dash.wait_for(
        lambda: int(dash.summary_rows()["000001"]["episodes"]) > int(frozen["000001"]["episodes"]),
        "000001 to go on",
    )
    assert dash.summary_rows()["000007"]["episodes"] == frozen["000007"]["episodes"]
    assert worker_statuses(lab.root / "form.sqlite")["000007"] == "stopped"
    assert page_errors == []


def test_dashboard_stop_all_ends_a_cell_blocked_in_run_wait(
    lab: LabServer, page: Any, page_errors: list[str], shot: Any
) -> None:
    name = write_notebook(
        lab.root,
        "wait.ipynb",
        [
            "import nbtrain\n"
            f"cfg = nbtrain.TrainConfig({LONG_RUN}, workers=2)\n"
            "run = nbtrain.launch(cfg, db='wait.sqlite')\n"
            "run.dashboard()",
            "print('WAITED', run.wait(timeout=120))",
        ],
    )
    nb = NotebookPage(page, lab.url, name)
    nb.run_all()
    dash = Dashboard(page.locator(".nbt-dashboard"))
    # The view's first request (hello) is answered while the next cell blocks in wait().
    dash.tab("000002").wait_for(timeout=FIRST_RENDER_MS)
    overview = dash.select("__all__")
    dash.wait_for(
        lambda: int(dash.summary_rows()["000001"]["episodes"]) > 0, "the run to make progress"
    )
    assert nb.prompt(1) == "[*]:", "the wait() cell should still be running"
    shot(dash.root, "blocked-in-wait")

    overview.locator(".nbt-panel-head .nbt-stop").click()
    expect(overview.locator(".nbt-stop-out")).to_have_text("stopped: stopped, stopped")
    out = nb.wait_output(1, r"WAITED")
    assert "'000001': 'stopped'" in out
    assert "'000002': 'stopped'" in out
    expect(nb.cells.nth(1).locator(".jp-InputArea-prompt")).to_have_text(re.compile(r"\[\d+\]"))
    assert wait_db_statuses(lab.root / "wait.sqlite", {"000001": "stopped", "000002": "stopped"})
    expect(dash.tab("000001")).to_have_attribute("data-status", "stopped")
    shot(dash.root, "stopped-while-waiting")
    assert page_errors == []


def test_failing_custom_agent_shows_its_traceback_in_its_tab(
    lab: LabServer, page: Any, page_errors: list[str], shot: Any
) -> None:
    name = write_notebook(
        lab.root,
        "failing.ipynb",
        [
            "import nbtrain\n"
            "cfg = nbtrain.TrainConfig(env_id='FrozenLake-v1', agent='pipeline_agents:Raises',"
            " episodes=50)\n"
            "run = nbtrain.launch(cfg, db='failing.sqlite')\n"
            "run.dashboard()",
        ],
    )
    nb = NotebookPage(page, lab.url, name)
    nb.run_all()
    dash = Dashboard(page.locator(".nbt-dashboard"))
    dash.tab("000001").wait_for(timeout=FIRST_RENDER_MS)
    expect(dash.tab("000001")).to_have_attribute("data-status", "failed")
    panel = dash.select("000001")
    expect(panel.locator(".nbt-status")).to_have_text(re.compile(r"^failed · pid \d+"))
    expect(panel.locator(".nbt-failure .nbt-error-line")).to_contain_text("agent exploded")
    traceback = panel.locator(".nbt-failure pre.nbt-traceback")
    expect(traceback).to_contain_text("Traceback")
    expect(traceback).to_contain_text("RuntimeError: agent exploded on purpose")
    expect(traceback).to_contain_text("pipeline_agents.py")
    expect(panel.locator(".nbt-panel-head .nbt-stop")).to_be_disabled()
    want = {"000001": "failed"}
    assert wait_db_statuses(lab.root / "failing.sqlite", want) == want
    shot(dash.root, "failed-worker-tab")
    assert page_errors == []
    # The exit code is learnt when the process is reaped, a moment after the worker's own
    # "failed"; the tab must show it too.
    expect(panel.locator(".nbt-status")).to_have_text(re.compile(r"^failed · .*exit code 1$"))


def test_every_chart_series_is_drawn_in_its_legend_colour(
    lab: LabServer, page: Any, shot: Any
) -> None:
    name = write_notebook(
        lab.root,
        "colours.ipynb",
        [
            "import nbtrain\n"
            "cfg = nbtrain.TrainConfig(env_id='CliffWalking-v1', episodes=40,"
            " max_steps_per_episode=60, workers=2)\n"
            "run = nbtrain.launch(cfg, db='colours.sqlite')\n"
            "run.wait(timeout=120)\n"
            "run.dashboard()",
        ],
    )
    NotebookPage(page, lab.url, name).run_all()
    dash = Dashboard(page.locator(".nbt-dashboard"))
    dash.tab("000002").wait_for(timeout=FIRST_RENDER_MS)
    expect(dash.tab("000001")).to_have_attribute("data-status", "completed")
    missing = []
    for key, chart_index, label in [
        ("__all__", 0, "mean across workers"),
        ("000001", 0, "mean of last 20"),
        ("000001", 1, "length"),
    ]:
        chart = dash.select(key).locator(".nbt-chart").nth(chart_index)
        dash.wait_for(lambda c=chart: int(c.get_attribute("data-points") or 0) > 0, "data")
        rgb = series_colours(chart)[label]
        if colour_pixels(chart, rgb) < 20:
            missing.append(f"{key}: {label!r} in {rgb}")
        shot(chart, f"chart-{key}-{chart_index}")
    assert not missing, f"series not drawn in their legend colour: {missing}"
