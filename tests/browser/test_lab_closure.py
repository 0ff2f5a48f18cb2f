"""A finished run's dashboard in a real JupyterLab: Evaluate policies starts an eval run whose
dashboard appears below (and an agent without a saved policy says so under the widget);
Keep, Delete and Archive from the closure summary go through the confirm step. After each
click the kernel's state (printed by a cell) and the SQLite file (plain sqlite3) are checked."""

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
CFG = (
    "dict(env_id='FrozenLake-v1', env_kwargs={'is_slippery': False}, episodes=30, "
    "max_steps_per_episode=20, workers=2)"
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


def run_mode(db: Path, run_id: str) -> str:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (config,) = con.execute("SELECT config FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    finally:
        con.close()
    found = re.search(r'"mode":\s*"(\w+)"', str(config))
    assert found, config
    return found.group(1)


def dashboard_of(page: Any, run_id: str) -> Any:
    """The outermost dashboard whose title names ``run_id`` (a nested eval dashboard has
    its own title)."""
    return page.locator(".nbt-dashboard").filter(
        has=page.locator(":scope > .nbt-title", has_text=run_id)
    )


def open_notebook(lab: LabServer, page: Any, name: str, cells: list[str]) -> NotebookPage:
    nb = NotebookPage(page, lab.url, write_notebook(lab.root, f"{name}.ipynb", cells))
    nb.run_all()
    return nb


def test_evaluate_from_a_finished_run_shows_the_eval_dashboard_below(
    lab: LabServer, page: Any, page_errors: list[str], shot: Any
) -> None:
    db = lab.root / "evaluate.sqlite"
    nb = open_notebook(
        lab,
        page,
        "evaluate",
        [
            f"import nbtrain\nrun = nbtrain.launch({{**{CFG}, 'seed': 1}}, db='{db.name}')\n"
            "run.wait(timeout=120)\ndash = run.dashboard()\nprint('RUN', run.run_id)\ndash",
            "e = dash.eval_dashboard\nprint('EVAL', e.run_id if e is not None else None)",
            f"bad = nbtrain.launch({{**{CFG}, 'agent': 'random'}}, db='{db.name}')\n"
            "bad.wait(timeout=120)\nprint('BAD', bad.run_id)\nbad_dash = bad.dashboard()\nbad_dash",
        ],
    )
    run_id = re.search(r"RUN (\w{26})", nb.wait_output(0, r"RUN \w{26}", FIRST_RENDER_MS))
    assert run_id
    run_id_s = run_id.group(1)
    nb.wait_output(1, r"EVAL None")
    dash = dashboard_of(page, run_id_s)
    actions = dash.locator(":scope > .nbt-closure-actions")
    expect(actions).to_be_visible(timeout=FIRST_RENDER_MS)  # the run has ended
    expect(actions.locator(".nbt-eval-episodes")).to_have_value("100")
    actions.locator(".nbt-eval-episodes").fill("5")
    actions.locator(".nbt-evaluate").click()
    out = actions.locator(".nbt-eval-out")
    expect(out).to_have_text(re.compile(r"eval run \w{26} started: its dashboard is below"))
    found = re.search(r"eval run (\w{26})", out.inner_text())
    assert found
    eval_id = found.group(1)
    below = dash.locator(":scope > .nbt-eval-dashboard .nbt-dashboard").first
    expect(below.locator(".nbt-title").first).to_contain_text(eval_id, timeout=FIRST_RENDER_MS)
    expect(below.locator(".nbt-tab")).to_have_count(3)  # All workers + the same two ids
    expect(below.locator(".nbt-outcome").first).to_contain_text("completed", timeout=60_000)
    shot(dash, "eval-dashboard-below")
    nb.rerun_cell(1)
    nb.wait_output(1, rf"EVAL {eval_id}")
    assert run_mode(db, eval_id) == "eval"
    assert counts(db, eval_id)["episodes"] == 10  # 2 workers x 5 episodes
    assert counts(db, run_id_s)["episodes"] == 60  # the trained run is untouched

    # An agent that saves no policy: the error is shown under the widget, not only logged.
    bad_id = re.search(r"BAD (\w{26})", nb.wait_output(2, r"BAD \w{26}", FIRST_RENDER_MS))
    assert bad_id
    bad = dashboard_of(page, bad_id.group(1))
    bad_actions = bad.locator(":scope > .nbt-closure-actions")
    expect(bad_actions).to_be_visible(timeout=FIRST_RENDER_MS)
    bad_actions.locator(".nbt-evaluate").click()
    expect(bad_actions.locator(".nbt-eval-out")).to_have_text(
        re.compile(r"evaluate failed: RunError: worker '000001' of run \w{26} has no saved policy")
    )
    expect(bad.locator(":scope > .nbt-error-area pre")).to_contain_text("has no saved policy")
    expect(bad.locator(":scope > .nbt-eval-dashboard")).to_be_empty()
    shot(bad, "evaluate-error")
    assert page_errors == []


def test_keep_delete_and_archive_from_the_closure_summary_after_the_confirm_step(
    lab: LabServer, page: Any, page_errors: list[str], shot: Any
) -> None:
    db = lab.root / "closure.sqlite"
    nb = open_notebook(
        lab,
        page,
        "closure",
        [
            f"import nbtrain\nruns = [nbtrain.launch({{**{CFG}, 'seed': i}}, db='{db.name}') "
            "for i in range(2)]\nfor r in runs:\n    r.wait(timeout=120)\n"
            "print('RUNS', *[r.run_id for r in runs])\nfirst = runs[0].dashboard()\nfirst",
            "second = runs[1].dashboard()\nsecond",
            "print('CLOSURE', repr(first.closure), repr(second.closure))",
        ],
    )
    ids = nb.wait_output(0, r"RUNS \w{26} \w{26}", FIRST_RENDER_MS).split("RUNS ")[1].split()
    gone, moved = ids[0], ids[1]
    before = counts(db, gone)
    chunks = before.pop("step_chunks")
    assert before == {"runs": 1, "workers": 2, "episodes": 60}
    assert 2 <= chunks <= 60  # a chunk per flush: at least one per worker, at most per episode
    first = dashboard_of(page, gone)
    actions = first.locator(":scope > .nbt-closure-actions")
    expect(actions).to_be_visible(timeout=FIRST_RENDER_MS)
    out = actions.locator(".nbt-closure-out")

    # Keep: said so; nothing changes.
    actions.locator(".nbt-keep").click()
    expect(out).to_have_text("kept: the run stays in its database")
    nb.rerun_cell(2)
    nb.wait_output(2, r"CLOSURE 'kept' ''")
    assert counts(db, gone)["episodes"] == 60

    # Delete asks first, with the per-worker summary; Cancel deletes nothing.
    actions.locator(".nbt-delete").click()
    confirm = actions.locator(".nbt-confirm")
    expect(confirm.locator("tr[data-worker]")).to_have_count(2)
    expect(confirm.locator("tr[data-worker='000002'] td").nth(1)).to_have_text("completed")
    expect(confirm).to_contain_text("2 workers, 60 episodes")
    shot(first, "confirm-delete")
    confirm.locator(".nbt-confirm-no").click()
    expect(confirm).to_be_hidden()
    assert counts(db, gone)["episodes"] == 60
    assert (lab.root / "nbtrain-runs" / gone).is_dir()

    # Again, and confirm: every row and the run folder go; nothing is offered any more.
    actions.locator(".nbt-delete").click()
    confirm.locator(".nbt-confirm-yes").click()
    expect(out).to_have_text(re.compile(rf"deleted run {gone}: .*60 episodes"))
    assert counts(db, gone) == dict.fromkeys(TABLES, 0)
    assert not (lab.root / "nbtrain-runs" / gone).exists()
    for button in (".nbt-evaluate", ".nbt-keep", ".nbt-archive", ".nbt-delete"):
        expect(actions.locator(button)).to_be_disabled()
    shot(first, "after-delete")

    # Archive from the second dashboard: the confirm step offers the file; the run moves.
    second = dashboard_of(page, moved)
    second_actions = second.locator(":scope > .nbt-closure-actions")
    second_actions.locator(".nbt-archive").click()
    target = second_actions.locator(".nbt-archive-to")
    expect(target).to_have_value(str(lab.root / "closure-archive.sqlite"))
    (lab.root / "cold").mkdir()
    target.fill(str(lab.root / "cold" / "archive.sqlite"))
    second_actions.locator(".nbt-confirm-yes").click()
    expect(second_actions.locator(".nbt-closure-out")).to_have_text(
        re.compile(rf"archived run {moved}")
    )
    assert counts(db, moved) == dict.fromkeys(TABLES, 0)
    assert counts(lab.root / "cold" / "archive.sqlite", moved)["episodes"] == 60
    assert (lab.root / "cold" / "nbtrain-runs" / moved).is_dir()
    nb.rerun_cell(2)
    nb.wait_output(2, r"CLOSURE 'deleted: .*' 'archived to .*cold/archive.sqlite: ")
    shot(second, "after-archive")
    assert page_errors == []
