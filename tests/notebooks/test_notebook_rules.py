"""The rules the tutorial notebooks follow, checked on the committed .ipynb files.

nbval compares stored outputs but not widget views or images, and it cannot tell a notebook
that checks nothing from one that checks everything. These rules close that gap: every
notebook asserts the numbers it shows, ignores at most two outputs (each with a reason),
skips nothing, was stored after one top-to-bottom run, and leaks no unstable reprs.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from nbtrain.ids import new_run_id

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SANITIZE = NOTEBOOKS / "nbval_sanitize.cfg"
EXPECTED = [
    "01_quickstart.ipynb",
    "02_compare_workers.ipynb",
    "03_exploring_episodes.ipynb",
    "04_custom_agent.ipynb",
    "05_cliff_walking.ipynb",
    "06_managing_runs.ipynb",
    "07_mountain_car_tile_coding.ipynb",
]
MAX_IGNORED = 2
# nbval's comment markers and cell tags (nbval/plugin.py: comment_markers, metadata_tags)
IGNORE_MARKERS = {"NBVAL_IGNORE_OUTPUT", "PYTEST_VALIDATE_IGNORE_OUTPUT"}
IGNORE_TAGS = {"nbval-ignore-output", "pytest-validate-ignore-output"}
SKIP_MARKERS = {"NBVAL_SKIP"}
SKIP_TAGS = {"nbval-skip"}
# Reprs that change between runs or machines: object addresses, matplotlib return values.
UNSTABLE_TEXT = re.compile(r" at 0x[0-9a-f]+|^\[?<matplotlib\.|^<Axes|^Text\(", re.MULTILINE)


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _marker_lines(source: str, markers: set[str]) -> list[int]:
    """Line numbers of comment lines nbval reads as one of ``markers`` (as nbval parses them)."""
    lines = source.splitlines()
    return [
        i
        for i, line in enumerate(lines)
        if line.strip().startswith("#") and line.strip().lstrip("#").strip() in markers
    ]


def _has_reason(source: str, marker_line: int) -> bool:
    """The line after the marker is a comment of at least three words saying why."""
    lines = source.splitlines()
    if marker_line + 1 >= len(lines):
        return False
    nxt = lines[marker_line + 1].strip()
    return nxt.startswith("#") and len(nxt.lstrip("#").split()) >= 3


def _has_assert(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return any(isinstance(node, ast.Assert) for node in ast.walk(tree))


def _texts(output: dict[str, Any]) -> list[str]:
    if output.get("output_type") == "stream":
        text = output.get("text", "")
        return ["".join(text) if isinstance(text, list) else str(text)]
    data = output.get("data", {})
    out = []
    for key in ("text/plain", "text/html"):
        if key in data:
            value = data[key]
            out.append("".join(value) if isinstance(value, list) else str(value))
    return out


def problems(nb: dict[str, Any]) -> list[str]:
    """Every rule this notebook breaks, as readable sentences (empty when it follows all)."""
    found: list[str] = []
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "python3":
        found.append(f"kernelspec name is {kernel!r}; it must be 'python3'")
    if "widgets" in nb.get("metadata", {}):
        found.append("widget state is stored in the metadata; execute without storing it")
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    if not code:
        return [*found, "the notebook has no code cells"]
    counts = [c.get("execution_count") for c in code]
    if counts != list(range(1, len(code) + 1)):
        found.append(
            f"execution counts are {counts}; store outputs from one top-to-bottom run "
            f"(expected 1..{len(code)})"
        )
    if any("execution" in c.get("metadata", {}) for c in code):
        found.append("cell timings are stored (metadata.execution); execute with record_timing off")
    if not any(c.get("outputs") for c in code):
        found.append("no outputs are stored")
    if not any(_has_assert(_source(c)) for c in code):
        found.append("no cell asserts anything; assert the numbers the notebook shows")
    ignored = 0
    for index, cell in enumerate(code):
        source = _source(cell)
        tags = set(cell.get("metadata", {}).get("tags", []))
        if _marker_lines(source, SKIP_MARKERS) or tags & SKIP_TAGS:
            found.append(f"code cell {index} is skipped by nbval (NBVAL_SKIP); run every cell")
        markers = _marker_lines(source, IGNORE_MARKERS)
        if tags & IGNORE_TAGS:
            ignored += 1
            found.append(
                f"code cell {index} ignores its output with a tag; use a "
                "# NBVAL_IGNORE_OUTPUT comment followed by a comment saying why"
            )
        elif markers:
            ignored += 1
            if not _has_reason(source, markers[0]):
                found.append(
                    f"code cell {index}: NBVAL_IGNORE_OUTPUT must be followed by a comment "
                    "line saying why the output cannot be compared"
                )
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "error":
                found.append(f"code cell {index} stored an error: {output.get('ename')}")
            elif kind == "stream" and output.get("name") == "stderr":
                found.append(f"code cell {index} wrote to stderr (warnings drift between runs)")
            for text in _texts(output):
                match = UNSTABLE_TEXT.search(text)
                if match:
                    found.append(
                        f"code cell {index} shows an unstable repr {match.group(0).strip()!r}; "
                        "end the cell with plt.show() or ';'"
                    )
    if ignored > MAX_IGNORED:
        found.append(f"{ignored} cells ignore their output; at most {MAX_IGNORED} may")
    if not any("tempfile.mkdtemp" in _source(c) for c in code):
        found.append("the notebook does not make its own fresh folder (tempfile.mkdtemp)")
    return found


def sanitize_patterns() -> list[tuple[str, str]]:
    """The (regex, replacement) pairs, parsed exactly as nbval parses the file."""
    return re.findall(r"^regex: (.*)$\n^replace: (.*)$", SANITIZE.read_text(), flags=re.M)


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    return data


def test_the_tutorials_are_there() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_follows_the_rules(name: str) -> None:
    assert problems(_load(name)) == []


def test_sanitize_file_covers_run_ids_and_temp_folders() -> None:
    patterns = sanitize_patterns()
    assert patterns, "no regex/replace pairs in nbval_sanitize.cfg"

    def sanitize(text: str) -> str:
        for regex, replacement in patterns:
            text = re.sub(regex, replacement, text)
        return text

    a, b = new_run_id(), new_run_id()
    assert sanitize(f"Run(run_id='{a}')") == sanitize(f"Run(run_id='{b}')")
    assert sanitize(f"{a}-w000002-ep000042") == sanitize(f"{b}-w000002-ep000042")
    assert sanitize("/tmp/nbtrain-cliff-abc_12x/db") == sanitize("/tmp/nbtrain-cliff-zz9/db")
    # Worker ids, numbers and words stay as they are.
    text = "worker_id 000002 q_learning mean_return 0.680 FrozenLake-v1"
    assert sanitize(text) == text


# -- the checker itself catches each kind of violation ---------------------------------------


def _notebook(*cells: dict[str, Any], kernel: str = "python3") -> dict[str, Any]:
    return {
        "metadata": {"kernelspec": {"name": kernel, "display_name": "Python 3"}},
        "cells": list(cells),
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _cell(source: str, n: int | None, outputs: list[Any] | None = None, **meta: Any) -> dict:
    return {
        "cell_type": "code",
        "source": source,
        "execution_count": n,
        "metadata": meta,
        "outputs": outputs if outputs is not None else [],
    }


_SETUP = "import tempfile\nworkdir = tempfile.mkdtemp()"
_SHOWN = [{"output_type": "execute_result", "data": {"text/plain": "3"}, "metadata": {}}]


def _good(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    cells = [_cell(_SETUP, 1), _cell("1 + 2", 2, _SHOWN), _cell("assert 1 + 2 == 3", 3)]
    for i, cell in enumerate(extra, start=4):
        cells.append({**cell, "execution_count": i})
    return cells


def _ignored(reason: str = "# timings differ on every run") -> dict[str, Any]:
    return _cell(f"# NBVAL_IGNORE_OUTPUT\n{reason}\nprint(1)", 0)


def _shows(output: dict[str, Any]) -> dict[str, Any]:
    """A good notebook plus one cell that stored ``output``."""
    return _notebook(*_good(_cell("x", 0, [output])))


def _result(text: str) -> dict[str, Any]:
    return {"output_type": "execute_result", "metadata": {}, "data": {"text/plain": text}}


def _tagged(tag: str) -> dict[str, Any]:
    return _notebook(*_good(_cell("print(1)", 0, tags=[tag])))


def test_checker_accepts_a_good_notebook() -> None:
    assert problems(_notebook(*_good(_ignored(), _ignored()))) == []


_WIDGETS = {"kernelspec": {"name": "python3"}, "widgets": {}}
_ERROR = {"output_type": "error", "ename": "ZeroDivisionError", "evalue": "", "traceback": []}
_STDERR = {"output_type": "stream", "name": "stderr", "text": "UserWarning: x"}
_LINE2D = "[<matplotlib.lines.Line2D at 0x7f3a2c1b5e10>]"
_NO_ASSERT = _cell("x = 1  # assert later", 2, _SHOWN)


@pytest.mark.parametrize(
    ("notebook", "expected"),
    [
        (_notebook(*_good(), kernel="python2"), "kernelspec name is 'python2'"),
        ({**_notebook(*_good()), "metadata": _WIDGETS}, "widget state is stored"),
        (_notebook(_cell(_SETUP, None), _cell("assert True", None)), "execution counts"),
        (_notebook(_cell(_SETUP, 2), _cell("assert True", 1, _SHOWN)), "execution counts"),
        (_notebook(_cell(_SETUP, 1), _cell("assert True", 2)), "no outputs are stored"),
        (_notebook(_cell(_SETUP, 1), _NO_ASSERT), "no cell asserts anything"),
        (_notebook(*_good(_cell("x", 0, execution={"iopub.status.busy": "2026"}))), "timings"),
        (_notebook(*_good(_cell("# NBVAL_SKIP\nprint(1)", 0))), "skipped by nbval"),
        (_tagged("nbval-skip"), "skipped by nbval"),
        (_notebook(*_good(_ignored(), _ignored(), _ignored())), "3 cells ignore their output"),
        (_notebook(*_good(_ignored(reason="print(2)"))), "must be followed by a comment"),
        (_notebook(*_good(_ignored(reason="# why"))), "must be followed by a comment"),
        (_tagged("nbval-ignore-output"), "ignores its output with a tag"),
        (_shows(_ERROR), "stored an error: ZeroDivisionError"),
        (_shows(_STDERR), "wrote to stderr"),
        (_shows(_result(_LINE2D)), "unstable repr"),
        (_shows(_result("<Axes: xlabel='episode'>")), "unstable repr '<Axes'"),
        (_shows(_result("Text(0.5, 1.0, 'title')")), "unstable repr 'Text('"),
        (_notebook(_cell("d = 'here'", 1, _SHOWN), _cell("assert d", 2)), "own fresh folder"),
        (_notebook({"cell_type": "markdown", "source": "# words", "metadata": {}}), "no code"),
    ],
)
def test_checker_reports_each_violation(notebook: dict[str, Any], expected: str) -> None:
    found = problems(notebook)
    assert any(expected in problem for problem in found), found
