"""Fixtures of the command-line tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HELPERS = str(Path(__file__).resolve().parents[1] / "helpers")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh database in a fresh working directory; workers can import tests/helpers."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(HELPERS)
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", HELPERS + (os.pathsep + old if old else ""))
    return tmp_path / "nbtrain.sqlite"
