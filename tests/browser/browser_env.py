"""What the browser tests need from the machine, and what happens when it is missing: a
skip on a developer's machine, a failure in CI (``CI`` set), so CI can never go green by
silently skipping them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

# Flags that work as root without network or GPU; Playwright adds its own --user-data-dir.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SYSTEM_CHROMIUM = "/usr/bin/chromium"


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail when ``CI`` is set (also usable at module level, during collection)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; the browser tests must run in CI", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def find_chromium() -> str | None:
    """``NBTRAIN_CHROMIUM`` if set (a path; it must exist), else ``chromium`` on PATH, else
    /usr/bin/chromium. Playwright's own browser download is never used."""
    override = os.environ.get("NBTRAIN_CHROMIUM")
    if override:
        return override if Path(override).is_file() else None
    found = shutil.which("chromium")
    if found:
        return found
    return SYSTEM_CHROMIUM if Path(SYSTEM_CHROMIUM).is_file() else None


def require_chromium() -> str:
    path = find_chromium()
    if path is None:
        unavailable("no system Chromium (apt-get install chromium, or set NBTRAIN_CHROMIUM)")
    return path


def require_playwright() -> ModuleType:
    """``playwright.sync_api``, or skip/fail as above."""
    try:
        from playwright import sync_api
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    return sync_api
