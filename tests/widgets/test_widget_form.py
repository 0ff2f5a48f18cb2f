"""TrainForm: values ↔ TrainConfig, per-field errors, worker-id preview, launch errors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from nbtrain.config import TrainConfig, WorkerSpec
from nbtrain.log_codes import LOG_UI_TRAIN_FORM_ERROR
from nbtrain.widgets import TrainForm
from nbtrain.widgets.envinfo import envs_for_agent
from nbtrain.widgets.form_fields import worker_preview


def test_prefilled_form_is_valid_and_gives_the_same_config() -> None:
    form = TrainForm(
        env_id="FrozenLake-v1",
        episodes=20,
        alpha=0.5,
        workers=[7, None, "w3"],
        telemetry={"steps": 5},
    )
    assert form.valid, form.errors
    config = form.config
    expected = TrainConfig(
        env_id="FrozenLake-v1",
        episodes=20,
        agent_kwargs={"alpha": 0.5},
        workers=[7, None, "w3"],
        telemetry={"steps": 5},
    )
    assert config.digest == expected.digest
    assert config.worker_ids == ["000007", "000001", "000003"]


def test_from_config_round_trips_the_digest() -> None:
    config = TrainConfig(
        env_id="CliffWalking-v1",
        episodes=7,
        seed=3,
        step_delay=0.01,
        agent="sarsa",
        agent_kwargs={"gamma": 0.9, "epsilon": 0.2, "epsilon_min": 0.1},
        workers=[WorkerSpec(worker_id="gpu_a", seed=11), 2],
        max_steps_per_episode=50,
        name="cliff",
    )
    form = TrainForm.from_config(config, db="x.sqlite")
    assert form.values["agent"] == "sarsa"
    assert form.values["workers_list"] == ["gpu_a", "2"]
    assert form.config.digest == config.digest


def test_invalid_values_show_errors_next_to_their_fields() -> None:
    form = TrainForm(env_id="FrozenLake-v1", episodes=10)
    form.set_values(episodes="ten", alpha="2", env_kwargs="{bad", telemetry_steps="sometimes")
    assert not form.valid
    errors = form.errors
    assert errors["episodes"] == "'ten' is not an integer"
    assert "alpha=2.0 is out of range" in errors["alpha"]
    assert errors["env_kwargs"].startswith("not valid JSON")
    assert "use all, none, or n" in errors["telemetry_steps"]
    with pytest.raises(ValueError, match="episodes"):
        _ = form.config


def test_config_error_from_pydantic_maps_to_the_field() -> None:
    form = TrainForm(env_id="Taxi-v3", episodes=10)
    assert "did you mean 'Taxi-v4'" in form.errors["env_id"]
    with pytest.raises(ValidationError):
        _ = form.config
    form.set_values(env_id="Taxi-v4", frames="rgb_array", episodes="0")
    assert "greater than or equal to 1" in form.errors["episodes"]
    form.set_values(episodes="3")
    assert form.valid, form.errors
    form.set_values(env_kwargs='{"is_slipery": true}', env_id="FrozenLake-v1")
    assert "is_slipery" in form.errors["env_kwargs"]


def test_required_episodes() -> None:
    form = TrainForm(env_id="FrozenLake-v1")
    assert form.errors["episodes"].startswith("required")
    assert not form.valid


def test_worker_rows_are_normalized_and_errors_shown_inline() -> None:
    preview = worker_preview(["7", "gpu-a", "", "000007", " W3 ", "GPU_A"])
    assert [p["id"] for p in preview] == ["000007", None, "000001", None, "000003", "gpu_a"]
    assert [p["auto"] for p in preview] == [False, False, True, False, False, False]
    assert "invalid worker id 'gpu-a'" in preview[1]["error"]
    assert "duplicate: row 1 is also '000007'" in preview[3]["error"]
    form = TrainForm(env_id="FrozenLake-v1", episodes=3, workers=["7", "gpu-a"])
    assert form.errors["workers"] == "fix the worker ids marked below"
    assert form.core.workers_preview[0]["id"] == "000007"
    form.set_values(workers_list=["7", ""])
    assert form.valid
    assert [p["id"] for p in form.core.workers_preview] == ["000007", "000001"]


def test_a_workers_mode_or_list_no_view_would_send_is_an_error_on_the_field() -> None:
    # Regression (QA): set_values(workers_mode="bogus") was valid with one worker, and
    # workers_list="7" (a string) became ['000007'].
    form = TrainForm(env_id="FrozenLake-v1", episodes=3, workers=3)
    form.set_values(workers_mode="bogus")
    assert not form.valid
    assert form.errors["workers"] == "workers_mode 'bogus' is not 'count' or 'list'"
    form.set_values(workers_mode="list", workers_list="7")
    assert not form.valid
    assert form.errors["workers"] == (
        "workers_list must be a list of worker ids (one per row), not str '7'"
    )
    form.set_values(workers_list=["7"])
    assert form.valid
    assert form.config.worker_ids == ["000007"]


def test_auto_ids_skip_explicit_ones() -> None:
    assert [p["id"] for p in worker_preview(["", "1", ""])] == ["000002", "000001", "000003"]


def test_count_mode_previews_ids() -> None:
    form = TrainForm(env_id="FrozenLake-v1", episodes=3, workers=3)
    assert [p["id"] for p in form.core.workers_preview] == ["000001", "000002", "000003"]
    form.set_values(workers_count="0")
    assert not form.valid
    assert "workers" in form.errors


def test_env_list_depends_on_the_agent() -> None:
    tabular = envs_for_agent("q_learning")
    assert {"FrozenLake-v1", "Taxi-v4", "CliffWalking-v1"} <= set(tabular)
    assert "CartPole-v1" not in tabular
    assert "CartPole-v1" in envs_for_agent("random")


def test_unknown_keyword_arguments_are_rejected_with_a_hint() -> None:
    with pytest.raises(TypeError, match=r"'episode'; did you mean 'episodes'\?"):
        TrainForm(env_id="FrozenLake-v1", episode=3)
    form = TrainForm(env_id="FrozenLake-v1", episodes=3)
    with pytest.raises(TypeError, match="'epsiodes'"):
        form.set_values(epsiodes="3")


def test_launch_failure_lands_in_the_error_area(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    form = TrainForm(db=tmp_path / "missing" / "x.sqlite", env_id="FrozenLake-v1", episodes=2)
    sent: list[dict[str, Any]] = []
    form.core._send_message = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="nbtrain"):
        form.core._handle_custom_msg({"kind": "request", "id": "L1", "method": "launch"}, [])
    assert sent[-1]["ok"] is False
    assert sent[-1]["error"]["type"] == "StoreAccessError"
    assert "does not exist" in form.core.error
    assert any(getattr(r, "code", None) == LOG_UI_TRAIN_FORM_ERROR for r in caplog.records)
    assert len(form.children) == 1


def test_launch_refuses_an_invalid_form(tmp_path: Path) -> None:
    form = TrainForm(db=tmp_path / "x.sqlite", env_id="FrozenLake-v1")
    with pytest.raises(ValueError, match="episodes"):
        form.launch()
    assert form.run is None


def test_repr() -> None:
    form = TrainForm(env_id="FrozenLake-v1", episodes=3)
    assert repr(form) == "TrainForm(env_id='FrozenLake-v1', agent='q_learning', valid=True)"


class TenLineAgent:
    """A notebook-style agent class: the form keeps the object, shows its name."""

    def __init__(self, observation_space: Any, action_space: Any, seed: int = 0) -> None:
        self.action_space = action_space

    def act(self, obs: Any, explore: bool = True) -> int:
        return 0

    def learn(self, *args: Any) -> None:
        return None


def test_a_notebook_agent_is_kept_as_an_object() -> None:
    form = TrainForm(env_id="FrozenLake-v1", episodes=3, agent=TenLineAgent)
    label = "custom: TenLineAgent"
    assert label in form.core.agents
    assert form.values["agent"] == label
    assert form.valid, form.errors
    assert form.config.agent is TenLineAgent


def test_from_config_shows_each_workers_own_settings() -> None:
    """Issue 15: from_config showed alpha 0.1 for a worker that really used 0.5."""
    config = TrainConfig(
        env_id="FrozenLake-v1",
        episodes=5,
        agent_kwargs={"alpha": 0.1},
        workers=[1, WorkerSpec(worker_id=2, seed=11, agent_kwargs={"alpha": 0.5})],
    )
    form = TrainForm.from_config(config)
    preview = form.core.workers_preview
    assert "overrides" not in preview[0]
    assert preview[1]["overrides"] == "seed 11 · α 0.5"  # noqa: RUF001
    assert form.config.digest == config.digest


def test_a_derived_name_is_left_blank_so_it_follows_the_environment() -> None:
    form = TrainForm.from_config(TrainConfig(env_id="FrozenLake-v1", episodes=5))
    assert form.values["name"] == ""
    form.set_values(env_id="CliffWalking-v1")
    assert form.config.name == "CliffWalking-v1-q_learning"
    named = TrainForm.from_config(TrainConfig(env_id="FrozenLake-v1", episodes=5, name="mine"))
    assert named.values["name"] == "mine"


def test_other_agent_kwargs_are_a_json_field() -> None:
    form = TrainForm(env_id="FrozenLake-v1", episodes=5, agent_kwargs={"alpha": 0.3})
    form.set_values(agent_kwargs='{"initial_q": 1.0}')
    assert form.valid, form.errors
    assert form.config.agent_kwargs == {"alpha": 0.3, "initial_q": 1.0}
    form.set_values(agent_kwargs="[1]")
    assert "JSON object" in form.errors["agent_kwargs"]
    form.set_values(agent_kwargs="{oops")
    assert form.errors["agent_kwargs"].startswith("not valid JSON")
    shown = TrainForm(env_id="FrozenLake-v1", episodes=5, agent_kwargs={"initial_q": 2.0})
    assert shown.values["agent_kwargs"] == '{"initial_q": 2.0}'


def test_a_tabular_agent_is_refused_an_environment_it_cannot_handle() -> None:
    form = TrainForm(env_id="CartPole-v1", episodes=5)
    assert not form.valid
    assert "bins" in form.errors["env_id"]
    assert "tile_sarsa" in form.errors["env_id"]
    form.set_values(agent="random")
    assert form.valid, form.errors
    form.set_values(env_id="MountainCarContinuous-v0", agent="sarsa")
    assert "continuous actions" in form.errors["env_id"] or "box actions" in form.errors["env_id"]


def test_the_form_says_what_a_blank_step_limit_resolves_to() -> None:
    form = TrainForm(env_id="FrozenLake-v1", episodes=5)
    limit = form.config.worker_configs()[0].max_steps_per_episode
    assert form.core.hints == {"max_steps_per_episode": f"{limit} steps, as the config resolves it"}
    help_texts = {f["name"]: f.get("help", "") for s in form.core.sections for f in s["fields"]}
    for name in ("alpha", "gamma", "epsilon", "epsilon_decay", "max_steps_per_episode"):
        assert help_texts[name], name
    assert set(form.core.agent_help) >= {"q_learning", "sarsa", "expected_sarsa", "random"}


class _Custom:  # an agent class of the test module: importable, no tabular fields
    def __init__(self, observation_space: Any, action_space: Any, **kw: Any) -> None:
        self.kw = kw

    def act(self, obs: Any, explore: bool = True) -> int:
        return 0

    def learn(self, *args: Any) -> None:
        return None


def test_a_hidden_hyperparameter_is_not_launched() -> None:
    """Regression (widgets audit): alpha typed for q_learning stayed in the launched config
    after switching to an agent whose form hides the tabular fields."""
    form = TrainForm(env_id="FrozenLake-v1", episodes=5, alpha=0.5, epsilon=0.3)
    assert form.config.agent_kwargs == {"alpha": 0.5, "epsilon": 0.3}
    form.set_values(agent="random")
    assert form.valid, (form.errors, form.core.general_errors)
    assert form.config.agent_kwargs == {}
    custom = TrainForm.from_config(
        TrainConfig(env_id="FrozenLake-v1", episodes=5, agent=_Custom, agent_kwargs={"alpha": 1})
    )
    assert custom.values["alpha"] == ""  # not in a hidden field: in the JSON box
    assert custom.values["agent_kwargs"] == '{"alpha": 1}'
    assert custom.config.agent_kwargs == {"alpha": 1}


def test_a_worker_spec_keeps_its_policy_and_the_form_keeps_checkpoint_every(
    tmp_path: Path,
) -> None:
    """Regression (widgets audit): the form rebuilt WorkerSpecs without policy_path, and
    had no checkpoint_every (from_config reset it to 100): Launch ran another config."""
    import gymnasium as gym

    from nbtrain.agents import QLearningAgent

    env = gym.make("FrozenLake-v1")
    policy = tmp_path / "p.json"
    QLearningAgent(env.observation_space, env.action_space).save(policy)
    config = TrainConfig(
        env_id="FrozenLake-v1", episodes=5, checkpoint_every=7,
        workers=[WorkerSpec(worker_id="a", policy_path=policy), "b"],
    )  # fmt: skip
    form = TrainForm.from_config(config, db=tmp_path / "x.sqlite")
    assert form.config.digest == config.digest
    assert form.config.worker_policies()["a"] == policy
    assert form.values["checkpoint_every"] == "7"
    assert "policy p.json" in form.core.workers_preview[0]["overrides"]
    form.set_values(checkpoint_every="none")
    assert form.config.checkpoint_every is None
    form.set_values(checkpoint_every="often")
    assert form.errors["checkpoint_every"] == "'often': use n (every n episodes) or none"
    assert (
        TrainForm(env_id="FrozenLake-v1", episodes=5, checkpoint_every=3).config.checkpoint_every
        == 3
    )


def test_an_error_while_validating_leaves_nothing_launchable() -> None:
    """Regression (widgets audit): after _validate raised, the previous config stayed
    valid, and Launch would have run values the form no longer showed."""
    form = TrainForm(env_id="FrozenLake-v1", episodes=5)
    assert form.valid
    form.set_values(episodes="7", workers_mode="list", workers_list=5)  # not a list of rows
    assert not form.valid
    assert form.core.general_errors[0].startswith("TypeError")
    with pytest.raises(TypeError):
        _ = form.config


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"alpha": "2"}, "alpha"),
        ({"epsilon_min": "0.5", "epsilon": "0.1"}, "epsilon_min"),
        # regression: shown under epsilon_decay (a name in the "accepted:" list) and agent
        ({"agent_kwargs": '{"alpa": 0.1}'}, "agent_kwargs"),
        ({"agent_kwargs": '{"bins": 0}'}, "agent_kwargs"),
    ],
)
def test_agent_kwargs_errors_show_under_the_field_typed_in(
    values: dict[str, str], field: str
) -> None:
    form = TrainForm(env_id="FrozenLake-v1", episodes=5)
    form.set_values(**values)
    assert list(form.errors) == [field]
