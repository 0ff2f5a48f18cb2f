"""How `nbtrain run` merges a config file with flags (no processes started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from nbtrain import TrainConfig
from nbtrain.cli import build_parser, main
from nbtrain.cli.training import _config_from_args, _parse_pairs


def _resolve(*argv: str) -> TrainConfig:
    config: TrainConfig = _config_from_args(build_parser().parse_args(["run", *argv]))
    return config


def test_a_derived_name_follows_env_and_agent_overrides(tmp_path: Path) -> None:
    # Regression: the file's derived name "FrozenLake-v1-q_learning" used to stick.
    path = tmp_path / "run.toml"
    TrainConfig(env_id="FrozenLake-v1", episodes=5).save(path)
    config = _resolve("--config", str(path), "--env", "CliffWalking-v1", "--agent", "sarsa")
    assert config.env_id == "CliffWalking-v1"
    assert config.name == "CliffWalking-v1-sarsa"
    assert config.episodes == 5


def test_a_chosen_name_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    TrainConfig(env_id="FrozenLake-v1", episodes=5, name="baseline").save(path)
    config = _resolve("--config", str(path), "--env", "CliffWalking-v1", "--episodes", "9")
    assert (config.name, config.env_id, config.episodes) == ("baseline", "CliffWalking-v1", 9)


def test_flags_merge_into_the_file_s_kwargs(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    TrainConfig(env_id="FrozenLake-v1", episodes=5, agent_kwargs={"alpha": 0.3, "gamma": 0.9}).save(
        path
    )
    config = _resolve("--config", str(path), "--set", "alpha=0.5", "--env-kw", "is_slippery=false")
    assert config.agent_kwargs == {"alpha": 0.5, "gamma": 0.9}
    assert config.env_kwargs == {"is_slippery": False}


def test_a_bad_file_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('env_id = "FrozenLake-v1"\nepisodes = 0\n')
    with pytest.raises(ValidationError, match="episodes"):
        _resolve("--config", str(path))


@pytest.mark.parametrize(
    ("text", "value"),
    [("False", False), ("TRUE", True), ("false", False), ("None", None), ("null", None),
     ('"True"', "True"), ("0.5", 0.5), ("[4, 4]", [4, 4]), ("8x8", "8x8")],
)  # fmt: skip
def test_key_values_take_python_spellings_of_true_false_none(text: str, value: object) -> None:
    parsed = _parse_pairs([f"x={text}"], "--env-kw")
    assert parsed == {"x": value}
    assert type(parsed["x"]) is type(value)


def test_env_kw_is_slippery_false_as_typed_in_gym_make() -> None:
    # Regression: "is_slippery=False" was stored as the string "False", which is truthy: the
    # lake stayed slippery.
    config = _resolve("--env", "FrozenLake-v1", "--episodes", "3", "--env-kw", "is_slippery=False")
    assert config.env_kwargs == {"is_slippery": False}


def test_a_string_for_a_true_false_env_parameter_is_refused() -> None:
    with pytest.raises(
        ValidationError, match="is_slippery takes True or False, not the string 'no'"
    ):
        _resolve("--env", "FrozenLake-v1", "--episodes", "3", "--env-kw", "is_slippery=no")
    with pytest.raises(ValidationError, match="not the string 'False'"):
        TrainConfig(env_id="FrozenLake-v1", episodes=3, env_kwargs={"is_slippery": "False"})


def test_an_invalid_config_file_is_named_in_the_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Regression: the line said "env_kwargs: Value error, env_kwargs: ..." and not which file.
    path = tmp_path / "experiment.toml"
    path.write_text('env_id = "FrozenLake-v1"\nepisodes = 3\nenv_kwargs = {is_slippery = "no"}\n')
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "nbtrain run: error: env_kwargs: is_slippery takes True or False, not the string 'no' "
        f"(while loading config file {path})"
    )


def test_each_problem_is_named_once(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "run",
        "--env",
        "FrozenLake-v1",
        "--episodes",
        "3",
        "--workers",
        "0",
        "--max-steps",
        "0",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "workers must be between 1 and 1024" in err
    assert "workers: workers" not in err
    assert "max_steps_per_episode: Input should be greater than or equal to 1" in err
    assert "Value error" not in err
