"""The committed bundle: present, identical to a fresh build of js/, shipped in the wheel.

The npm-based checks (fresh build, vitest, ``tsc`` type-check of the JS) run when Node and
js/node_modules are there (``npm ci`` in js/), and always in CI, where their absence fails;
the wheel check always runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "js"
STATIC = ROOT / "src" / "nbtrain" / "static"
BUNDLE = ["form.js", "form.css", "dashboard.js", "dashboard.css", "viewer.js", "viewer.css"]

_HAVE_NPM = shutil.which("npm") is not None and (JS / "node_modules").is_dir()
# In CI (.ci/run runs `npm ci`) a missing toolchain is a failure, never a silent skip.
needs_npm = pytest.mark.skipif(
    not _HAVE_NPM and not os.environ.get("CI"),
    reason="needs npm and js/node_modules (cd js && npm ci)",
)


def test_bundle_files_are_committed_and_are_esm_modules() -> None:
    for name in BUNDLE:
        path = STATIC / name
        assert path.is_file(), f"missing {path}; run npm run build in js/"
        assert path.stat().st_size > 100
    for name in ("form.js", "dashboard.js", "viewer.js"):
        assert "export{" in (STATIC / name).read_text().replace(" ", "")


def test_widget_classes_point_at_the_bundle() -> None:
    from nbtrain.widgets import EpisodeViewer, RunDashboard
    from nbtrain.widgets.form import FormCore

    def text(cls: type, key: str) -> str:
        return str(cls.class_traits()[key].default_value)  # type: ignore[attr-defined]

    assert text(RunDashboard, "_esm") == (STATIC / "dashboard.js").read_text()
    assert text(FormCore, "_css") == (STATIC / "form.css").read_text()
    assert text(EpisodeViewer, "_esm") == (STATIC / "viewer.js").read_text()


@needs_npm
def test_fresh_build_is_byte_for_byte_the_committed_bundle() -> None:
    result = subprocess.run(
        ["npm", "run", "--silent", "check-bundle"],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout


@needs_npm
@pytest.mark.slow
def test_vitest_suite_passes() -> None:
    result = subprocess.run(
        ["npm", "test", "--silent"], cwd=JS, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@needs_npm
def test_js_type_checks_strictly() -> None:
    """``checkJs`` + ``strict`` over js/src with anywidget's own types (js/tsconfig.json)."""
    config = (JS / "tsconfig.json").read_text()
    assert '"checkJs": true' in config
    assert '"strict": true' in config
    result = subprocess.run(
        ["npm", "run", "--silent", "typecheck"], cwd=JS, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.slow
def test_wheel_contains_the_static_files(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("nbtrain-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in BUNDLE:
        assert f"nbtrain/static/{name}" in names
    assert not any("node_modules" in n for n in names)
