"""The form's agents: every built-in one (tile_sarsa too), each with the hyperparameter
defaults and help of its own signature, and only the environments it can handle."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbtrain.agents import BUILTIN_AGENTS, agent_params
from nbtrain.widgets import TrainForm
from nbtrain.widgets.envinfo import env_catalogue, envs_for_agent
from nbtrain.widgets.form_help import FIELD_HELP
from nbtrain.widgets.form_spec import HYPER, hyper_by_agent


def test_every_built_in_agent_is_offered_with_a_line_of_help() -> None:
    form = TrainForm(env_id="FrozenLake-v1", episodes=5)
    assert list(form.core.agents) == list(BUILTIN_AGENTS)
    assert "tile_sarsa" in form.core.agents
    assert set(form.core.agent_help) == set(BUILTIN_AGENTS)
    form.close()


def test_hyperparameter_fields_come_from_each_agents_signature() -> None:
    by_agent = hyper_by_agent()
    for agent in BUILTIN_AGENTS:
        params = agent_params(agent)
        assert by_agent[agent] == {
            k: {"placeholder": str(params[k].default), "help": params[k].help}
            for k in HYPER
            if k in params
        }
    assert by_agent["tile_sarsa"]["alpha"]["placeholder"] == str(0.5 / 8)
    assert by_agent["q_learning"]["alpha"]["placeholder"] == "0.1"
    assert by_agent["random"] == {}
    assert not set(FIELD_HELP) & set(HYPER)  # one source: the agents' PARAM_HELP
    form = TrainForm(env_id="FrozenLake-v1", episodes=5)
    assert form.core.agent_hyper == by_agent
    form.close()


def test_tile_sarsa_gets_box_observations_with_discrete_actions() -> None:
    facts = {f["id"]: f for f in env_catalogue()}
    ids = envs_for_agent("tile_sarsa")
    assert {"MountainCar-v0", "CartPole-v1", "Acrobot-v1"} <= set(ids)
    assert all(facts[i]["obs"] == "box" and facts[i]["action"] == "discrete" for i in ids)
    assert "FrozenLake-v1" not in ids
    assert "MountainCarContinuous-v0" not in ids


def test_tile_sarsa_on_an_environment_it_cannot_handle_is_an_error_on_the_field() -> None:
    form = TrainForm(env_id="FrozenLake-v1", episodes=5, agent="tile_sarsa")
    assert not form.valid
    assert form.errors["env_id"] == (
        "tile_sarsa tile-codes continuous (Box) observations; FrozenLake-v1 has discrete "
        "observations (use q_learning, sarsa or expected_sarsa)"
    )
    form.set_values(env_id="MountainCarContinuous-v0")
    assert "discrete set of actions" in form.errors["env_id"]
    form.set_values(env_id="MountainCar-v0", alpha="0.1", agent_kwargs='{"tilings": 4}')
    assert form.valid, form.errors
    assert form.config.agent_kwargs == {"alpha": 0.1, "tilings": 4}
    form.close()


@pytest.mark.slow
def test_a_tile_sarsa_run_launched_from_the_form_completes(tmp_path: Path) -> None:
    form = TrainForm(
        db=tmp_path / "x.sqlite",
        env_id="MountainCar-v0",
        agent="tile_sarsa",
        episodes=2,
        max_steps_per_episode=50,
    )
    assert form.valid, form.errors
    run = form.launch()
    assert run.wait(timeout=60) == {"000001": "completed"}
    assert list(run.summary()["steps"]) == [100]
    form.close()
