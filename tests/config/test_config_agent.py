"""The ``agent`` field, agent_kwargs rules and agent/env compatibility."""

from __future__ import annotations

import base64
import hashlib
import inspect
import os
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle
import pytest
from pydantic import ValidationError

from nbtrain.config import TABULAR_AGENT_KWARGS, TrainConfig, WorkerSpec
from nbtrain.config.agentref import resolve_agent

HELPERS = Path(__file__).resolve().parents[1] / "helpers"


@pytest.fixture
def fx(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(HELPERS))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(HELPERS), old) if p))
    import config_fixtures

    return config_fixtures


def make(**fields: Any) -> TrainConfig:
    fields.setdefault("episodes", 1)
    fields.setdefault("env_id", "FrozenLake-v1")
    return TrainConfig(**fields)


def error_text(**fields: Any) -> str:
    with pytest.raises(ValidationError) as info:
        make(**fields)
    return str(info.value)


# -- the agent field ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["q_learning", "sarsa", "expected_sarsa", "random"])
def test_builtin_agents(name: str) -> None:
    config = make(agent=name)
    assert config.agent_ref.kind == "builtin"
    assert config.agent_ref.name == name
    assert config.name == f"FrozenLake-v1-{name}"
    assert config.canonical_payload()["agent"] == {
        "kind": "builtin",
        "name": name,
        "source_sha256": None,
    }


def test_default_agent_is_q_learning() -> None:
    assert make().agent == "q_learning"


def test_unknown_builtin_suggests() -> None:
    text = error_text(agent="qlearning")
    assert "unknown agent 'qlearning'; did you mean 'q_learning'?" in text
    assert "'pkg.mod:factory'" in text
    assert "unknown agent 'zzz'. Use one of" in error_text(agent="zzz")


def test_import_path_is_resolved_but_never_called(fx: ModuleType) -> None:
    before = len(fx.CALLS)
    config = make(agent="config_fixtures:make_agent", agent_kwargs={"anything": [1, 2]})
    config.worker_configs()
    assert len(fx.CALLS) == before
    assert config.agent_ref.kind == "import"
    assert config.agent_ref.name == "config_fixtures:make_agent"
    assert config.name == "FrozenLake-v1-config_fixtures:make_agent"


def test_import_path_with_dotted_qualname(fx: ModuleType) -> None:
    assert make(agent="config_fixtures:Outer.Inner.build").agent_ref.kind == "import"


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        ("config_fixtures:missing", "module 'config_fixtures' has no attribute 'missing'"),
        ("config_fixtures:NOT_CALLABLE", "names a int, not a class or callable"),
        ("nbt_no_such_module_xyz:f", "cannot import module 'nbt_no_such_module_xyz'"),
        ("config_fixtures:", "must look like 'pkg.mod:factory'"),
        (":make_agent", "must look like 'pkg.mod:factory'"),
        ("config_fixtures:make_agent:x", "must look like 'pkg.mod:factory'"),
    ],
)
def test_bad_import_paths(fx: ModuleType, agent: str, message: str) -> None:
    text = error_text(agent=agent)
    assert message in text
    assert repr(agent) in text


@pytest.mark.parametrize("agent", [3, None, ["q_learning"]])
def test_agent_of_wrong_type(agent: object) -> None:
    text = error_text(agent=agent)
    assert "agent must be" in text
    assert repr(agent) in text


def test_importable_class_is_referenced_by_name(fx: ModuleType) -> None:
    by_object = make(agent=fx.ImportableAgent)
    by_name = make(agent="config_fixtures:ImportableAgent", name=by_object.name)
    assert by_object.agent_ref.kind == "import"
    assert by_object.agent_ref.name == "config_fixtures:ImportableAgent"
    assert by_object.agent_ref.payload is None
    assert by_object.name == "FrozenLake-v1-ImportableAgent"
    assert by_object.digest == by_name.digest


def test_notebook_class_is_pickled_with_source_hash() -> None:
    class NotebookAgent:
        def __init__(self, observation_space: Any, action_space: Any, seed: int = 0) -> None:
            self.action_space = action_space

        def act(self, obs: Any, explore: bool = True) -> int:
            return 1

    config = make(agent=NotebookAgent)
    ref = config.agent_ref
    assert ref.kind == "pickle"
    assert ref.name == NotebookAgent.__qualname__
    assert config.name == f"FrozenLake-v1-{NotebookAgent.__qualname__}"
    assert (
        ref.source_sha256 == hashlib.sha256(inspect.getsource(NotebookAgent).encode()).hexdigest()
    )
    assert ref.payload is not None
    revived = cloudpickle.loads(base64.b64decode(ref.payload))
    assert revived(None, "space").act(0) == 1
    assert config.canonical_payload()["agent"] == {
        "kind": "pickle",
        "name": NotebookAgent.__qualname__,
        "source_sha256": ref.source_sha256,
    }
    assert "payload" not in config.canonical_json
    assert config.worker_configs()[0].agent.payload == ref.payload


def test_callable_without_source_hashes_its_pickle() -> None:
    namespace: dict[str, Any] = {}
    exec("factory = lambda observation_space, action_space, seed=0: None", namespace)
    factory = namespace["factory"]
    ref = resolve_agent(factory)
    assert ref.kind == "pickle"
    assert ref.payload is not None
    assert ref.source_sha256 == hashlib.sha256(base64.b64decode(ref.payload)).hexdigest()
    assert ref.name == "<lambda>"


def test_unpicklable_callable_is_rejected() -> None:
    lock = threading.Lock()

    def factory(observation_space: Any, action_space: Any, seed: int = 0) -> Any:
        with lock:
            return None

    text = error_text(agent=factory)
    assert "cannot be sent to workers: pickling failed" in text
    assert "'pkg.mod:factory'" in text


# -- agent_kwargs ----------------------------------------------------------------------------


def test_tabular_kwargs_constant() -> None:
    assert {"alpha", "gamma", "epsilon", "epsilon_min", "epsilon_decay", "bins", "bounds"} <= (
        TABULAR_AGENT_KWARGS
    )


def test_tabular_kwargs_are_accepted_and_floats_normalized() -> None:
    config = make(
        agent="sarsa",
        agent_kwargs={"alpha": 1, "gamma": 0, "epsilon": 1, "epsilon_min": 0, "epsilon_decay": 1},
    )
    assert config.canonical_payload()["agent_kwargs"] == {
        "alpha": 1.0,
        "gamma": 0.0,
        "epsilon": 1.0,
        "epsilon_min": 0.0,
        "epsilon_decay": 1.0,
    }
    same = make(
        agent="sarsa",
        agent_kwargs={
            "alpha": 1.0,
            "gamma": 0.0,
            "epsilon": 1.0,
            "epsilon_min": 0.0,
            "epsilon_decay": 1.0,
        },
    )
    assert config.digest == same.digest


def test_unknown_tabular_kwarg_is_named_with_suggestion() -> None:
    text = error_text(agent_kwargs={"alpah": 0.5})
    assert "q_learning does not take 'alpah'; did you mean 'alpha'?" in text
    assert "accepted: alpha, bins, bounds" in text
    assert "agent_kwargs" in text


def test_random_takes_no_kwargs() -> None:
    assert "the 'random' agent takes no agent_kwargs" in error_text(
        agent="random", agent_kwargs={"alpha": 0.1}
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0}, "alpha=0.0 is out of range; need 0.0 < alpha <= 1.0"),
        ({"alpha": 1.5}, "alpha=1.5 is out of range"),
        ({"gamma": -0.1}, "gamma=-0.1 is out of range; need 0.0 <= gamma <= 1.0"),
        ({"gamma": 1.01}, "gamma=1.01 is out of range"),
        ({"epsilon": 1.5}, "epsilon=1.5 is out of range"),
        ({"epsilon_min": -0.5}, "epsilon_min=-0.5 is out of range"),
        ({"epsilon_decay": 0}, "0.0 < epsilon_decay <= 1.0"),
        ({"epsilon_decay": 1.1}, "epsilon_decay=1.1 is out of range"),
        ({"epsilon": 0.1, "epsilon_min": 0.2}, "epsilon_min (0.2) must not exceed epsilon (0.1)"),
        ({"epsilon": 0.01}, "epsilon_min (0.05, its default) must not exceed epsilon (0.01)"),
        ({"alpha": "fast"}, "alpha must be a number; got 'fast'"),
        ({"alpha": True}, "alpha must be a number; got True"),
        ({"bins": 0}, "bins=0; need an integer >= 1"),
        ({"bins": []}, "bins=[]"),
        ({"bins": [3, 0]}, "bins=[3, 0]"),
        ({"bins": True}, "bins=True"),
        ({"bounds": [[1, 0]]}, "bounds=[[1, 0]]; need a list of [low, high] pairs"),
        ({"bounds": "wide"}, "bounds='wide'"),
    ],
)
def test_tabular_kwarg_ranges(kwargs: dict[str, Any], message: str) -> None:
    assert message in error_text(agent="expected_sarsa", agent_kwargs=kwargs)


def test_custom_agents_take_any_json_kwargs(fx: ModuleType) -> None:
    config = make(agent="config_fixtures:make_agent", agent_kwargs={"width": 3, "alpah": None})
    assert config.worker_configs()[0].agent_kwargs == {"width": 3, "alpah": None}


def test_agent_kwargs_must_be_json() -> None:
    assert "agent_kwargs['alpha'] is" in error_text(agent_kwargs={"alpha": object()})


# -- agent / env compatibility --------------------------------------------------------------


def test_tabular_needs_discrete_actions() -> None:
    text = error_text(env_id="MountainCarContinuous-v0", agent="q_learning")
    assert "q_learning needs a discrete action space; MountainCarContinuous-v0 has Box(" in text
    assert make(env_id="MountainCarContinuous-v0", agent="random")


def test_box_observations_need_bins() -> None:
    text = error_text(env_id="CartPole-v1", agent="q_learning")
    assert "q_learning on CartPole-v1" in text
    assert "bins" in text
    text = error_text(env_id="CartPole-v1", agent="q_learning", agent_kwargs={"bins": 6})
    assert "infinite bound" in text
    assert "bounds" in text
    config = make(
        env_id="CartPole-v1",
        agent="q_learning",
        agent_kwargs={"bins": 6, "bounds": [None, [-3, 3], None, [-3.5, 3.5]]},
    )
    assert config.worker_configs()[0].agent_kwargs["bins"] == 6


def test_bins_per_dimension_must_match() -> None:
    text = error_text(env_id="MountainCar-v0", agent="sarsa", agent_kwargs={"bins": [4, 4, 4]})
    assert "sarsa on MountainCar-v0" in text
    assert "bins=[4, 4, 4]" in text
    assert make(env_id="MountainCar-v0", agent="sarsa", agent_kwargs={"bins": [4, 5]})


def test_bins_for_discrete_observations_are_rejected() -> None:
    assert "only applies to Box observation spaces" in error_text(agent_kwargs={"bins": 4})


def test_table_too_large() -> None:
    text = error_text(env_id="MountainCar-v0", agent_kwargs={"bins": [100_000, 100]})
    assert "use fewer bins" in text


def test_tuple_of_discrete_observations_work() -> None:
    assert make(env_id="Blackjack-v1", agent="q_learning")


def test_unsupported_observation_space(fx: ModuleType) -> None:
    text = error_text(env_id=f"config_fixtures:{fx.DICT_ID}", agent="q_learning")
    assert "cannot use the observation space Dict(" in text
    assert make(env_id=f"config_fixtures:{fx.DICT_ID}", agent="random")


def test_worker_kwargs_are_merged_and_checked_per_worker() -> None:
    config = make(
        agent_kwargs={"alpha": 0.2, "epsilon": 0.5},
        workers=[None, WorkerSpec(worker_id="b", agent_kwargs={"epsilon": 0.3})],
    )
    first, second = config.worker_configs()
    assert first.agent_kwargs == {"alpha": 0.2, "epsilon": 0.5}
    assert second.agent_kwargs == {"alpha": 0.2, "epsilon": 0.3}
    text = error_text(
        agent_kwargs={"epsilon": 0.5},
        workers=[WorkerSpec(worker_id="b", agent_kwargs={"epsilon_min": 0.6})],
    )
    assert "agent_kwargs of worker b: epsilon_min (0.6) must not exceed epsilon (0.5)" in text
    text = error_text(workers=[WorkerSpec(agent_kwargs={"gama": 0.9})])
    assert "agent_kwargs of worker 000001: q_learning does not take 'gama'" in text


def test_an_agent_from_a_run_s_row_keeps_its_stored_identity_and_only_it() -> None:
    """An agent unpickled from a run's row (restart, evaluate) keeps the name and source
    hash it was stored under; an equal but different object does not, and the pickle sent
    to workers is made afresh from the object as it is."""
    import base64
    import dataclasses

    import cloudpickle

    from nbtrain.config.agentref import adopt_stored_agent, resolve_agent

    @dataclasses.dataclass(frozen=True)
    class Factory:  # equal instances hash alike
        size: int

        def __call__(self, observation_space: object, action_space: object) -> object:
            return None

    stored, equal = Factory(1), Factory(1)
    adopt_stored_agent(stored, "Stored", "0" * 64)
    ref = resolve_agent(stored)
    assert (ref.kind, ref.name, ref.source_sha256) == ("pickle", "Stored", "0" * 64)
    assert cloudpickle.loads(base64.b64decode(ref.payload or "")) == stored
    other = resolve_agent(equal)
    assert (other.name, other.source_sha256) != ("Stored", "0" * 64)


# -- what a worker can import --------------------------------------------------------------
AGENT_SOURCE = """
class Const:
    def __init__(self, observation_space, action_space, seed=None):
        self.action = 2

    def act(self, obs, explore=True):
        return self.action

    def learn(self, obs, action, reward, next_obs, terminated, truncated):
        return {"const": self.action}
"""


def kernel_only_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module on this process's sys.path only, as after ``sys.path.insert`` in a cell."""
    name = f"kernel_only_{tmp_path.name.replace('-', '_')}"
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / f"{name}.py").write_text(AGENT_SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    return name


def test_an_import_path_only_this_kernel_can_import_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: it validated, and every worker then failed with ModuleNotFoundError."""
    name = kernel_only_module(tmp_path, monkeypatch)
    text = error_text(agent=f"{name}:Const")
    assert f"agent import path '{name}:Const' imports in this kernel only" in text
    assert "ModuleNotFoundError" in text
    assert "sys.path changes in the notebook do not reach workers" in text
    # On PYTHONPATH, as a worker gets it, the same path is fine.
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "mods"))
    assert make(agent=f"{name}:Const").agent_ref.kind == "import"


def test_a_class_only_this_kernel_can_import_travels_by_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    import nbtrain

    name = kernel_only_module(tmp_path, monkeypatch)
    const = importlib.import_module(name).Const
    cfg = make(agent=const, episodes=3, env_kwargs={"is_slippery": False})
    assert cfg.agent_ref.kind == "pickle"
    assert name not in cloudpickle.list_registry_pickle_by_value()  # left as it was
    run = nbtrain.launch(cfg, db=tmp_path / "run.sqlite")
    assert run.wait(timeout=60) == {"000001": "completed"}
    assert set(run.steps()["action"]) == {2}
