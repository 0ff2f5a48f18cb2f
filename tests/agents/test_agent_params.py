"""One source for the built-in agents' defaults: the signature. The class docstrings, the
form's placeholders and help, config validation and docs/agents.md must all agree with it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from nbtrain.agents import (
    ExpectedSarsaAgent,
    QLearningAgent,
    SarsaAgent,
    TabularAgent,
    TileSarsaAgent,
    agent_params,
)
from nbtrain.config import TABULAR_AGENT_KWARGS, TrainConfig
from nbtrain.config.agentkw import builtin_params
from nbtrain.widgets import form_spec

DOCS = Path(__file__).resolve().parents[2] / "docs" / "agents.md"
TABULAR = ("q_learning", "sarsa", "expected_sarsa")


def _signature_defaults(cls: type) -> dict[str, object]:
    return {
        p.name: p.default
        for p in inspect.signature(cls).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("q_learning", QLearningAgent),
        ("sarsa", SarsaAgent),
        ("expected_sarsa", ExpectedSarsaAgent),
        ("tile_sarsa", TileSarsaAgent),
    ],
)
def test_registry_reads_the_signature(name: str, cls: type) -> None:
    params = agent_params(name)
    assert {k: p.default for k, p in params.items()} == _signature_defaults(cls)
    assert all(p.help for p in params.values())  # every hyperparameter is explained
    assert builtin_params(name) == _signature_defaults(cls)  # what validation uses


def test_all_tabular_agents_share_one_signature() -> None:
    defaults = [_signature_defaults(c) for c in (QLearningAgent, SarsaAgent, ExpectedSarsaAgent)]
    assert defaults[0] == defaults[1] == defaults[2] == _signature_defaults(TabularAgent)
    assert set(defaults[0]) == TABULAR_AGENT_KWARGS


@pytest.mark.parametrize("cls", [TabularAgent, TileSarsaAgent])
def test_docstring_table_shows_the_signature(cls: type) -> None:
    doc = cls.__doc__ or ""
    for name, default in _signature_defaults(cls).items():
        row = re.search(rf"^``{name}``\s+``(.+?)``\s", doc, re.MULTILINE)
        assert row is not None, name
        assert row.group(1) == repr(default)


def test_form_placeholders_and_help_come_from_the_signature() -> None:
    defaults = _signature_defaults(TabularAgent)
    params = agent_params("q_learning")
    fields = {
        f["name"]: f for section in form_spec.SECTIONS for f in section["fields"] if "group" in f
    }
    for key in form_spec.HYPER:
        assert form_spec.HYPER_DEFAULTS[key] == defaults[key]
        assert fields[key]["placeholder"] == str(defaults[key])
        assert fields[key]["help"] == params[key].help
    assert "1.0 keeps ε constant (the textbook's)" in fields["epsilon_decay"]["help"]


def test_validation_compares_a_partial_override_with_the_real_default() -> None:
    floor = _signature_defaults(TabularAgent)["epsilon_min"]
    assert isinstance(floor, float)
    with pytest.raises(ValidationError, match=rf"epsilon_min \({floor}, its default\)"):
        TrainConfig(env_id="FrozenLake-v1", episodes=1, agent_kwargs={"epsilon": floor / 2})


def test_docs_table_matches_the_signature() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for title, cls in (("tabular", TabularAgent), ("tile_sarsa", TileSarsaAgent)):
        section = text.split(f"<!-- params:{title} -->")[1].split("<!-- /params -->")[0]
        for name, default in _signature_defaults(cls).items():
            row = re.search(rf"^\| `{name}` \| `(.+?)` \|", section, re.MULTILINE)
            assert row is not None, (title, name)
            assert row.group(1) == repr(default), (title, name)
    assert "epsilon_decay=1.0" in text


def test_the_textbook_constant_epsilon_is_stated_everywhere() -> None:
    import nbtrain.agents.tabular as tabular

    assert "``epsilon=0.1, epsilon_decay=1.0``" in (tabular.__doc__ or "")
    assert "epsilon_decay=1.0" in (TabularAgent.__doc__ or "")
    agent = QLearningAgent(*_frozenlake_spaces(), seed=0, epsilon=0.1, epsilon_decay=1.0)
    for _ in range(50):
        agent.end_episode()
    assert agent.epsilon == 0.1


def _frozenlake_spaces() -> tuple[object, object]:
    from gymnasium import spaces

    return spaces.Discrete(16), spaces.Discrete(4)
