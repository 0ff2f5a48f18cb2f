"""Real-browser tests: JupyterLab and Notebook 7 driven by the system Chromium via Playwright.

README
------
Run them (they are marked ``browser`` and ``slow``)::

    pytest tests/browser -m browser            # about two minutes on two cores
    pytest tests/browser -m browser -x -v      # stop at the first failure

What they need:

* Chromium from the system (``apt-get install chromium``; ``.ci/run`` does it). Playwright's
  own browser download is not used: the tests launch ``$NBTRAIN_CHROMIUM`` if set, else
  ``chromium`` on PATH, else ``/usr/bin/chromium``. Without it (or without playwright) they
  are skipped, except when ``CI`` is set: then the suite fails (browser_env.py).
* The ``test`` extra: playwright, jupyterlab, notebook, ipykernel (and ipywidgets/anywidget
  from the package's own dependencies).

Each test module starts one ``jupyter lab`` on 127.0.0.1 with a free port, no token, and
temporary Jupyter config/data/runtime folders (the kernelspec and the widget extensions are
found under ``sys.prefix/share/jupyter``, which stays on the path). Cell windowing is off
(a user setting in the temporary config folder) so every cell and widget is in the DOM. The
kernel (and so every worker) imports this checkout's ``src`` and ``tests/helpers``.

There are no automatic reruns and no fixed sleeps where a condition can be waited for;
waits are generous (60 s for a first render). Screenshots of key steps, and of the page of
any failing test, go to ``test-artifacts/browser/`` (gitignored; CI keeps it as an
artifact). The server's log is printed when a test fails.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_env import CHROMIUM_ARGS, require_chromium, require_playwright
from browser_server import REPO, LabServer

ARTIFACTS = REPO / "test-artifacts" / "browser"
VIEWPORT = {"width": 1400, "height": 1000}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """The system Chromium, headless, driven by Playwright (one per session)."""
    executable = require_chromium()
    sync_api = require_playwright()
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # screenshots of this session only
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def lab(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """One JupyterLab server per test module; nothing of it outlives the module. (It needs
    the browser only so that a missing browser skips before a server starts.)"""
    server = LabServer(tmp_path_factory.mktemp("lab"))
    try:
        server.start()
        yield server
    finally:
        leftovers = server.stop()
    assert not leftovers, f"processes outlived the Jupyter server (killed now): {leftovers}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120]


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught exceptions in the page (a widget's JS crashing shows up here)."""
    return []


@pytest.fixture
def page(
    browser: Any, lab: LabServer, page_errors: list[str], request: pytest.FixtureRequest
) -> Iterator[Any]:
    """A fresh browser context and page; on failure a screenshot and the server's log;
    afterwards every kernel is shut down (their workers exit with them)."""
    expect = require_playwright().expect
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    expect.set_options(timeout=30_000)  # Playwright's default of 5 s is too short on 2 cores
    pg = context.new_page()
    errors = page_errors
    pg.on("pageerror", lambda err: errors.append(f"{err.name}: {err.message}\n{err.stack}"))
    try:
        yield pg
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            try:
                failed = ARTIFACTS / f"{_slug(request.node.name)}-FAILED.png"
                pg.screenshot(path=failed, full_page=True)
            except Exception as err:  # a crashed page must not hide the test's own failure
                print(f"could not take the failure screenshot: {err}")
            print(f"page errors: {errors}")
            print(f"jupyter log (tail):\n{lab.log_tail()}")
        context.close()
        lab.shutdown_kernels()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """``shot(target, "launched")`` saves test-artifacts/browser/<test>-<n>-launched.png;
    ``target`` is the page or a locator (a widget: scrolled into view, just its pixels)."""
    counter = iter(range(1, 100))

    def take(target: Any, step: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{_slug(request.node.name)}-{next(counter):02d}-{_slug(step)}.png"
        target.screenshot(path=path)
        return path

    return take
