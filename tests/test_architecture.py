"""The package's layers, as docs/architecture.md states them, hold in the code.

Each area of ``src/nbtrain`` may import only areas of lower layers (and its own). Imports
under ``if TYPE_CHECKING:`` do not count. The only import that goes up a layer is a lazy
one listed in ``UPWARD`` with its reason; there are no import circles.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "nbtrain"
DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"

# Lowest first. An area is a top-level module or sub-package of nbtrain.
LAYERS: list[set[str]] = [
    {"errors", "log_codes", "procinfo", "statuses", "threadprio"},
    {"ids", "logs", "seeding"},
    {"wire"},
    {"agents"},
    {"worker"},
    {"config"},
    {"store"},
    {"live"},
    {"dispatch"},
    {"jupyter_events"},
    {"run_reads"},
    {"run_ending"},
    {"run"},
    {"widgets"},
    {"cli"},
    {"__init__", "__main__"},
]
# (importing module, imported area): lazy imports that go up, and why.
UPWARD = {
    # Run.dashboard() builds the widget for the Run it is called on; the widget module
    # imports run.py at module level, so the call stays inside the method.
    ("nbtrain.run", "widgets"),
}


def _layer(area: str) -> int:
    for i, layer in enumerate(LAYERS):
        if area in layer:
            return i
    raise AssertionError(f"area {area!r} is in no layer of tests/test_architecture.py")


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported nbtrain module, at module level?) for every import outside TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child, top)
            return
        if isinstance(node, ast.Import):
            out.extend((a.name, top) for a in node.names if a.name.startswith("nbtrain"))
        elif isinstance(node, ast.ImportFrom) and node.module == "nbtrain":
            # ``from nbtrain import log_codes`` imports a module, not the package's facade.
            out.extend(
                (f"nbtrain.{a.name}" if a.name in _MODULES else "nbtrain", top) for a in node.names
            )
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("nbtrain")
        ):
            out.append((str(node.module), top))
        inner = top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    for node in tree.body:
        visit(node, True)
    return out


_MODULES = {m.split(".", 1)[1] for m in _modules() if "." in m}
EDGES = [
    (module, target, top)
    for module, path in _modules().items()
    for target, top in _imports(path)
    if _area(module) != _area(target)
]


def test_imports_go_down_the_layers() -> None:
    wrong = []
    for module, target, top in EDGES:
        low, high = _layer(_area(target)), _layer(_area(module))
        if low >= high and (top or (module, _area(target)) not in UPWARD):
            where = "at module level" if top else "without a reason in UPWARD"
            wrong.append(f"{module} imports {target} (layer {low} >= {high}) {where}")
    assert wrong == []


def test_there_are_upward_imports_only_where_listed() -> None:
    upward = {(m, _area(t)) for m, t, _ in EDGES if _layer(_area(t)) >= _layer(_area(m))}
    assert upward == UPWARD


def test_every_area_is_in_a_layer_and_in_the_docs() -> None:
    areas = {_area(m) for m in _modules()}
    layered = set().union(*LAYERS)
    assert areas <= layered, f"areas without a layer: {sorted(areas - layered)}"
    table = DOC.read_text()
    for area in areas - {"__init__"}:
        name = area if (SRC / area).is_dir() is False else f"{area}/"
        assert re.search(rf"`{re.escape(name)}(\.py)?`", table), f"{area} is not in {DOC.name}"
