"""env_id and env_kwargs validation against the real Gymnasium registry."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from pydantic import ValidationError

from nbtrain.config import TelemetryConfig, TrainConfig, envcheck

HELPERS = Path(__file__).resolve().parents[1] / "helpers"


@pytest.fixture
def fx(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The helper env/agent module, importable here and in fresh interpreters (workers)."""
    monkeypatch.syspath_prepend(str(HELPERS))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(HELPERS), old) if p))
    import config_fixtures

    return config_fixtures


@pytest.fixture
def scratch_ids() -> Iterator[list[str]]:
    """Env ids a test registers in this process only (as a notebook would); removed after."""
    ids: list[str] = []
    yield ids
    for env_id in ids:
        gym.registry.pop(env_id, None)


def make(**fields: Any) -> TrainConfig:
    fields.setdefault("episodes", 1)
    return TrainConfig(**fields)


def error_text(**fields: Any) -> str:
    with pytest.raises(ValidationError) as info:
        make(**fields)
    return str(info.value)


def test_registered_env_is_accepted() -> None:
    config = make(env_id="FrozenLake-v1")
    assert config.env_id == "FrozenLake-v1"
    assert config.name == "FrozenLake-v1-q_learning"


@pytest.mark.parametrize(
    ("env_id", "suggestion"),
    [("Taxi-v3", "'Taxi-v4'"), ("FrozenLake-v0", "'FrozenLake-v1'"), ("CartPole", "'CartPole-v1'")],
)
def test_unknown_env_suggests_close_matches(env_id: str, suggestion: str) -> None:
    text = error_text(env_id=env_id)
    assert f"unknown Gymnasium env id {env_id!r}" in text
    assert f"did you mean {suggestion}" in text or f"or {suggestion}" in text
    assert "env_id" in text


def test_unknown_env_without_close_match_has_no_suggestion() -> None:
    text = error_text(env_id="Zzqxv-v9")
    assert "unknown Gymnasium env id 'Zzqxv-v9'" in text
    assert "did you mean" not in text
    assert "pkg.mod:EnvName-v0" in text


@pytest.mark.parametrize("env_id", ["a:b:c", ":Grid-v0", "mod:"])
def test_malformed_module_form(env_id: str) -> None:
    assert "must be 'EnvName-v0' or 'pkg.mod:EnvName-v0'" in error_text(env_id=env_id)


def test_module_form_imports_the_module(fx: ModuleType) -> None:
    config = make(env_id=f"config_fixtures:{fx.GRID_ID}", env_kwargs={"size": 6})
    assert config.env_id == "config_fixtures:NbtConfigGrid-v0"
    assert config.worker_configs()[0].env_id == "config_fixtures:NbtConfigGrid-v0"


def test_module_form_unimportable_module() -> None:
    text = error_text(env_id="nbt_no_such_module_xyz:Grid-v0")
    assert "cannot import module 'nbt_no_such_module_xyz'" in text
    assert "ModuleNotFoundError" in text


def test_module_form_module_that_registers_nothing(fx: ModuleType) -> None:
    text = error_text(env_id="config_fixtures:NbtConfigGrd-v0")
    assert "module 'config_fixtures' was imported but registers no env 'NbtConfigGrd-v0'" in text
    assert "did you mean 'NbtConfigGrid-v0'" in text


def test_env_registered_in_the_notebook_with_local_class(scratch_ids: list[str]) -> None:
    class LocalEnv(gym.Env[int, int]):
        pass

    scratch_ids.append("NbtNotebookLocal-v0")
    gym.register("NbtNotebookLocal-v0", entry_point=LocalEnv)
    text = error_text(env_id="NbtNotebookLocal-v0")
    assert "registered only in this kernel" in text
    assert "'module:Env-v0' form" in text
    assert "my_envs:NbtNotebookLocal-v0" in text


def test_env_registered_with_main_entry_point(scratch_ids: list[str]) -> None:
    scratch_ids.append("NbtNotebookMain-v0")
    gym.register("NbtNotebookMain-v0", entry_point="__main__:MyEnv")
    text = error_text(env_id="NbtNotebookMain-v0")
    assert "registered only in this kernel" in text
    assert "'__main__:MyEnv'" in text
    assert "'module:Env-v0' form" in text


def test_a_variant_of_a_builtin_env_registered_in_the_notebook(scratch_ids: list[str]) -> None:
    """Regression: a new id with a ``gymnasium.`` entry point (the usual way to register a
    variant of a built-in env) skipped the worker check; the worker then failed with
    NameNotFound."""
    scratch_ids.append("NbtLakeVariant-v0")
    gym.register(
        "NbtLakeVariant-v0",
        entry_point="gymnasium.envs.toy_text.frozen_lake:FrozenLakeEnv",
        kwargs={"is_slippery": False},
    )
    text = error_text(env_id="NbtLakeVariant-v0")
    assert "registered only in this kernel" in text
    assert "my_envs:NbtLakeVariant-v0" in text
    # gymnasium's own ids still skip the fresh-interpreter probe
    assert {"FrozenLake-v1", "CartPole-v1", "CliffWalking-v1"} <= envcheck._gymnasium_own_ids()


def test_module_form_does_not_excuse_a_notebook_entry_point(
    fx: ModuleType, scratch_ids: list[str]
) -> None:
    scratch_ids.append("NbtNotebookMain2-v0")
    gym.register("NbtNotebookMain2-v0", entry_point="__main__:MyEnv")
    assert "registered only in this kernel" in error_text(
        env_id="config_fixtures:NbtNotebookMain2-v0"
    )


def test_plain_id_of_a_package_env_points_to_module_form(fx: ModuleType) -> None:
    # The kernel imported config_fixtures, so the plain id is registered here, but a worker
    # (a fresh interpreter) has not imported it.
    text = error_text(env_id=fx.GRID_ID)
    assert "registered only in this kernel" in text
    assert "env_id='config_fixtures:NbtConfigGrid-v0'" in text


def test_module_form_with_module_missing_in_workers(
    fx: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Importable here (sys.path) but not by a worker (no PYTHONPATH): a notebook sys.path hack.
    monkeypatch.delenv("PYTHONPATH")
    text = error_text(env_id=f"config_fixtures:{fx.KWARGS_ID}")
    assert "registered only in this kernel" in text
    assert "ModuleNotFoundError" in text


def test_env_kwargs_typo_is_named_with_suggestion_and_accepted_list() -> None:
    text = error_text(env_id="FrozenLake-v1", env_kwargs={"is_slipery": False})
    assert "FrozenLake-v1 does not take 'is_slipery'" in text
    assert "did you mean 'is_slippery'" in text
    assert "accepted: desc, map_name, is_slippery" in text
    assert "render_mode" not in text.split("accepted:")[1]


def test_env_kwargs_valid_values_are_used_to_learn_spaces() -> None:
    config = make(env_id="FrozenLake-v1", env_kwargs={"is_slippery": False, "map_name": "8x8"})
    assert config.env_kwargs == {"is_slippery": False, "map_name": "8x8"}


@pytest.mark.parametrize(
    ("key", "hint"),
    [("max_episode_steps", "max_steps_per_episode"), ("render_mode", "telemetry.frames")],
)
def test_reserved_env_kwargs(key: str, hint: str) -> None:
    text = error_text(env_id="FrozenLake-v1", env_kwargs={key: 5})
    assert f"env_kwargs must not contain {key!r}" in text
    assert hint in text


def test_make_keyword_disable_env_checker_is_allowed() -> None:
    assert make(env_id="CartPole-v1", agent="random", env_kwargs={"disable_env_checker": True})


def test_env_kwargs_value_that_breaks_the_constructor() -> None:
    text = error_text(env_id="FrozenLake-v1", env_kwargs={"map_name": "9x9"})
    assert "making FrozenLake-v1 with {'map_name': '9x9'} failed" in text
    assert "KeyError" in text


def test_env_with_var_kwargs_is_checked_by_constructing(fx: ModuleType) -> None:
    env_id = f"config_fixtures:{fx.KWARGS_ID}"
    assert make(env_id=env_id, env_kwargs={"size": 3})
    text = error_text(env_id=env_id, env_kwargs={"colour": "red"})
    assert "unexpected keyword arguments ['colour']" in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"desc": object()}, "env_kwargs['desc'] is <object"),
        ({1: "x"}, "env_kwargs has key 1; keys must be strings"),
        ({"success_rate": float("nan")}, "env_kwargs['success_rate'] is nan"),
        ({"success_rate": float("inf")}, "only finite numbers"),
    ],
)
def test_env_kwargs_must_be_plain_json(kwargs: dict[Any, Any], message: str) -> None:
    assert message in error_text(env_id="FrozenLake-v1", env_kwargs=kwargs)


def test_env_kwargs_not_a_dict() -> None:
    assert "env_kwargs" in error_text(env_id="FrozenLake-v1", env_kwargs=["is_slippery"])


def test_env_kwargs_tuples_and_numpy_become_json() -> None:
    config = make(
        env_id="FrozenLake-v1",
        env_kwargs={"reward_schedule": (1, 0, np.int64(0)), "success_rate": np.float32(0.5)},
    )
    assert config.env_kwargs == {"reward_schedule": [1, 0, 0], "success_rate": 0.5}
    assert type(config.env_kwargs["reward_schedule"][2]) is int


def test_frames_mode_must_be_supported_by_the_env() -> None:
    text = error_text(
        env_id="CartPole-v1",
        agent="random",
        telemetry=TelemetryConfig(frames="ansi"),
    )
    assert "CartPole-v1 cannot render 'ansi'" in text
    assert "'rgb_array'" in text
    assert make(env_id="FrozenLake-v1", telemetry={"frames": "ansi"})
    assert make(env_id="CartPole-v1", agent="random", telemetry={"frames": "rgb_array"})
