"""RunBrowser in a real JupyterLab: the table of three real runs, sorting, selecting one run
opens its dashboard below, selecting several overlays their curves, and the confirm step
before Delete and Archive; after every click the kernel's state (printed by a cell) and the
SQLite file (read with plain sqlite3) are checked."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from browser_env import require_playwright
from browser_notebook import FIRST_RENDER_MS, NotebookPage, write_notebook
from browser_server import LabServer

expect = require_playwright().expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TABLES = ("runs", "workers", "episodes", "step_chunks")

SETUP = """import nbtrain
cfg = dict(env_id='FrozenLake-v1', env_kwargs={'is_slippery': False}, episodes=30,
           max_steps_per_episode=20, workers=2)
runs = [nbtrain.launch({**cfg, 'name': f'lake-{i}', 'seed': i}, db='DB')
        for i in range(3)]
for r in runs:
    r.wait(timeout=120)
browser = nbtrain.RunBrowser(db='DB', poll_interval=0.2)
browser"""
STATE = (
    "d = browser.dashboard\n"
    "print('STATE', browser.table.sort, browser.table.descending, len(browser.selected),"
    " d.run_id if d else None, len(browser.table.overlay.get('runs', [])), browser.table.total)"
)


def counts(db: Path, run_id: str) -> dict[str, int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {
            t: con.execute(f"SELECT COUNT(*) FROM {t} WHERE run_id = ?", (run_id,)).fetchone()[0]
            for t in TABLES
        }
    finally:
        con.close()


def open_browser(lab: LabServer, page: Any, name: str) -> tuple[NotebookPage, Any]:
    """A notebook that makes three real runs in ``{name}.sqlite`` and shows the browser."""
    nb_name = write_notebook(
        lab.root, f"{name}.ipynb", [SETUP.replace("DB", f"{name}.sqlite"), STATE]
    )
    nb = NotebookPage(page, lab.url, nb_name)
    nb.run_all()
    root = page.locator(".nbt-run-browser")
    expect(root.locator("tr.nbt-run")).to_have_count(3, timeout=FIRST_RENDER_MS)
    nb.wait_output(1, r"STATE created True 0 None 0 3")
    return nb, root


def test_table_sort_select_one_dashboard_select_several_overlay(
    lab: LabServer, page: Any, page_errors: list[str], shot: Any
) -> None:
    nb, root = open_browser(lab, page, "browse")
    rows = root.locator("tr.nbt-run")
    first = rows.nth(0)
    expect(first.locator(".nbt-name")).to_have_text("lake-2")  # newest first
    expect(first.locator(".nbt-status")).to_have_text("completed")
    expect(first.locator(".nbt-wdot[data-status='completed']")).to_have_count(2)
    expect(first.locator("td.nbt-num").nth(0)).to_have_text("60")  # 2 workers x 30 episodes
    expect(root.locator(".nbt-page-info")).to_have_text(re.compile(r"1.3 of 3"))
    shot(root, "table")

    # Sort by name: ascending first; Python sees it.
    root.locator("th[data-key='name']").click()
    expect(root.locator("th[data-key='name']")).to_have_attribute("aria-sort", "ascending")
    expect(rows.nth(0).locator(".nbt-name")).to_have_text("lake-0")
    nb.rerun_cell(1)
    nb.wait_output(1, r"STATE name False 0 None 0 3")

    # One run: its dashboard opens below the table, with a tab per worker.
    run_id = rows.nth(1).get_attribute("data-run-id")
    assert run_id
    rows.nth(1).locator(".nbt-name").click()
    dash = root.locator(".nbt-dashboard")
    expect(dash.locator(".nbt-title")).to_contain_text(run_id, timeout=FIRST_RENDER_MS)
    expect(dash.locator(".nbt-tab")).to_have_count(3)
    expect(rows.nth(1)).to_have_attribute("aria-selected", "true")
    nb.rerun_cell(1)
    nb.wait_output(1, rf"STATE name False 1 {run_id} 0 3")
    shot(root, "one-selected-dashboard")

    # Several runs: the dashboard goes, their learning curves are overlaid.
    rows.nth(0).locator(".nbt-select").click()
    overlay = root.locator(".nbt-overlay")
    expect(overlay).to_have_attribute("data-runs", "2")
    expect(root.locator(".nbt-dashboard")).to_have_count(0)
    chart = overlay.locator(".nbt-chart")
    expect(chart).to_have_attribute("data-points", "30")
    expect(chart.locator("canvas")).to_have_count(1)
    rows.nth(2).locator(".nbt-select").click()
    expect(overlay).to_have_attribute("data-runs", "3")
    nb.rerun_cell(1)
    nb.wait_output(1, r"STATE name False 3 None 3 3")
    shot(root, "three-overlaid")
    assert page_errors == []


def test_delete_and_archive_only_after_the_confirm_step(
    lab: LabServer, page: Any, page_errors: list[str], shot: Any
) -> None:
    nb, root = open_browser(lab, page, "delete")
    db = lab.root / "delete.sqlite"
    rows = root.locator("tr.nbt-run")
    gone = rows.nth(0).get_attribute("data-run-id")
    assert gone
    before = counts(db, gone)
    chunks = before.pop("step_chunks")
    assert before == {"runs": 1, "workers": 2, "episodes": 60}
    assert 2 <= chunks <= 60  # a chunk per flush: at least one per worker, at most per episode

    # Delete asks first, with the per-worker summary; Cancel deletes nothing.
    rows.nth(0).locator(".nbt-delete").click()
    confirm = root.locator(".nbt-confirm")
    expect(confirm.locator("tr[data-worker]")).to_have_count(2)
    expect(confirm.locator("tr[data-worker='000001'] td").nth(1)).to_have_text("completed")
    expect(confirm).to_contain_text("2 workers, 60 episodes")
    shot(root, "confirm-delete")
    confirm.locator(".nbt-confirm-no").click()
    expect(confirm).to_be_hidden()
    assert counts(db, gone)["episodes"] == 60
    assert (lab.root / "nbtrain-runs" / gone).is_dir()

    # Again, and confirm: every row and the run folder go; the table follows.
    rows.nth(0).locator(".nbt-delete").click()
    confirm.locator(".nbt-confirm-yes").click()
    expect(root.locator(".nbt-action-out")).to_have_text(
        re.compile(rf"deleted run {gone}: .*60 episodes")
    )
    expect(rows).to_have_count(2)
    assert counts(db, gone) == dict.fromkeys(TABLES, 0)
    assert not (lab.root / "nbtrain-runs" / gone).exists()
    nb.rerun_cell(1)
    nb.wait_output(1, r"STATE created True 0 None 0 2\b")

    # Archive: the confirm step takes the file; the run moves there.
    moved = rows.nth(0).get_attribute("data-run-id")
    assert moved
    rows.nth(0).locator(".nbt-archive").click()
    target = confirm.locator(".nbt-archive-to")
    expect(target).to_have_value(str(lab.root / "delete-archive.sqlite"))
    (lab.root / "cold").mkdir()
    target.fill(str(lab.root / "cold" / "archive.sqlite"))
    confirm.locator(".nbt-confirm-yes").click()
    expect(root.locator(".nbt-action-out")).to_have_text(re.compile(rf"archived run {moved}"))
    expect(rows).to_have_count(1)
    assert counts(db, moved) == dict.fromkeys(TABLES, 0)
    assert counts(lab.root / "cold" / "archive.sqlite", moved)["episodes"] == 60
    assert (lab.root / "cold" / "nbtrain-runs" / moved).is_dir()
    shot(root, "after-archive")
    assert page_errors == []
