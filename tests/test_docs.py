"""The docs cannot drift from the code (in the spirit of sqlite-utils' ``test_docs.py``).

Every public name is documented, the README's Python examples use only public names, every
log code is used, every CLI sub-command is in the README, and every link in it resolves.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest

import nbtrain
from nbtrain import log_codes
from nbtrain.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = README + "".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
SRC = ROOT / "src" / "nbtrain"


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


@pytest.mark.parametrize("name", [n for n in nbtrain.__all__ if n != "__version__"])
def test_every_public_name_is_documented(name: str) -> None:
    assert re.search(rf"\b{re.escape(name)}\b", DOCS), f"nbtrain.{name} is in no README or doc"


def test_the_readme_has_python_examples() -> None:
    assert len(_python_blocks(README)) >= 3


def test_readme_examples_use_only_public_names() -> None:
    public = set(nbtrain.__all__)
    wrong = []
    for block in _python_blocks(README):
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nbtrain"):
                names = [a.name for a in node.names]
                if node.module != "nbtrain" or not set(names) <= public:
                    wrong.append(f"from {node.module} import {', '.join(names)}")
            elif isinstance(node, ast.Import):
                wrong += [a.name for a in node.names if a.name.startswith("nbtrain.")]
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "nbtrain"
                and node.attr not in public
            ):
                wrong.append(f"nbtrain.{node.attr}")
    assert wrong == []


def _code_names() -> list[str]:
    return [n for n in vars(log_codes) if n.startswith("LOG_")]


@pytest.mark.parametrize("code", _code_names())
def test_every_log_code_is_used_in_src(code: str) -> None:
    users = [
        p
        for p in SRC.rglob("*.py")
        if p.name != "log_codes.py" and re.search(rf"\b{code}\b", p.read_text())
    ]
    assert users, f"{code} is used nowhere in src/nbtrain: delete it"


def test_log_codes_are_their_names() -> None:
    assert {getattr(log_codes, n) for n in _code_names()} == set(_code_names())
    assert set(_code_names()) == log_codes.ALL_CODES


def _sub_commands() -> list[str]:
    (action,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(action.choices)


def test_there_are_sub_commands() -> None:
    assert {"run", "runs", "stop"} <= set(_sub_commands())


@pytest.mark.parametrize("command", _sub_commands())
def test_every_sub_command_is_in_the_readme(command: str) -> None:
    assert re.search(rf"^\s*(python -m pip .*&& )?nbtrain {command}\b", README, flags=re.M), (
        f"`nbtrain {command}` is not shown in README.md"
    )


def test_every_linked_file_exists() -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if "://" not in link and not link.startswith("mailto:")]
    assert local, "the README links no docs"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert missing == []


@pytest.mark.parametrize(
    "module",
    [
        "nbtrain.errors",
        "nbtrain.ids",
        "nbtrain.statuses",
        "nbtrain.run",
        "nbtrain.run_ending",
        "nbtrain.store",
        "nbtrain.store.frames",
        "nbtrain.config.model",
        "nbtrain.config.parts",
        "nbtrain.dispatch.process",
    ],
)
def test_docstring_examples_run(
    module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The public API's examples that need no run (the rest are marked ``+SKIP``) hold."""
    import doctest
    import importlib

    monkeypatch.chdir(tmp_path)  # where an example's default nbtrain.sqlite would go
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(importlib.import_module(module), extraglobs={"nbtrain": nbtrain}):
        runner.run(test)
    assert runner.failures == 0
    # Regression: launch()'s example started a real run in the working directory (the
    # repository's root, under pytest).
    assert list(tmp_path.iterdir()) == []
