"""Evaluation: self-contained policies (eval needs only ``policy_path``), per-worker
policies, and ``evaluation_config`` launched end to end with two workers whose policies
differ visibly, so that a mix-up fails."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest
from pydantic import ValidationError

import nbtrain
from nbtrain.agents import QLearningAgent, TileSarsaAgent
from nbtrain.config import TrainConfig, WorkerSpec, evaluation_config

# FrozenLake 4x4 without slipping: DOWN, DOWN, RIGHT, DOWN, RIGHT, RIGHT reaches the goal.
PATH = {0: 1, 4: 1, 8: 2, 9: 1, 13: 2, 14: 2}
LAKE = {"env_id": "FrozenLake-v1", "env_kwargs": {"is_slippery": False}}


def lake_policy(path: Path, moves: dict[int, int]) -> Path:
    env = gym.make("FrozenLake-v1", is_slippery=False)
    agent = QLearningAgent(env.observation_space, env.action_space, seed=0)
    for state, action in moves.items():
        agent.q[state][action] = 1.0
    agent.save(path)
    return path


@pytest.fixture
def policies(tmp_path: Path) -> dict[str, Path]:
    return {
        "walker": lake_policy(tmp_path / "walker.json", PATH),  # reaches the goal in 6 steps
        "sitter": lake_policy(tmp_path / "sitter.json", dict.fromkeys(range(16), 0)),  # LEFT
    }


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "nbtrain.sqlite"


# -- evaluation_config: a pure function ----------------------------------------------------


def test_evaluation_config_keeps_ids_and_gives_each_worker_its_policy(
    policies: dict[str, Path],
) -> None:
    train = TrainConfig(
        **LAKE,
        episodes=50,
        seed=4,
        agent_kwargs={"alpha": 0.5},
        workers=["sitter", WorkerSpec(worker_id="walker", seed=11, agent_kwargs={"gamma": 0.9})],
    )
    config = evaluation_config(train, policies, episodes=7)
    assert config.mode == "eval"
    assert config.episodes == 7
    assert config.worker_ids == ["sitter", "walker"]  # the training run's order and ids
    assert config.worker_policies() == {"sitter": policies["sitter"], "walker": policies["walker"]}
    workers = {w.worker_id: w for w in config.worker_configs()}
    assert workers["walker"].policy_path == str(policies["walker"])
    assert workers["sitter"].policy_path == str(policies["sitter"])
    assert workers["walker"].seed == 11
    assert workers["walker"].agent_kwargs == {"alpha": 0.5, "gamma": 0.9}
    assert [w.seed for w in config.worker_configs()] == [w.seed for w in train.worker_configs()]
    assert config.name == f"{train.name} (eval)"
    assert config.env_kwargs == train.env_kwargs
    assert config.step_limit == train.step_limit == 100
    assert config.checkpoint_every is None
    payload = config.canonical_payload()
    assert [w["policy_path"] for w in payload["workers"]] == [
        str(policies["sitter"]),
        str(policies["walker"]),
    ]


def test_evaluation_config_for_some_workers_and_bad_ids(policies: dict[str, Path]) -> None:
    train = TrainConfig(**LAKE, episodes=5, workers=["walker", "sitter", 3])
    only = evaluation_config(train, {"walker": policies["walker"]})
    assert only.worker_ids == ["walker"]
    assert only.episodes == 100
    assert evaluation_config(train, {"w3": policies["sitter"]}).worker_ids == ["000003"]
    with pytest.raises(ValueError, match=r"worker\(s\) 000009 that the run does not have"):
        evaluation_config(train, {9: policies["walker"]})
    with pytest.raises(ValueError, match="policies is empty"):
        evaluation_config(train, {})


def test_a_worker_policy_overrides_the_run_policy(policies: dict[str, Path]) -> None:
    config = TrainConfig(
        **LAKE,
        episodes=1,
        mode="eval",
        policy_path=policies["sitter"],
        workers=[WorkerSpec(worker_id=1), WorkerSpec(worker_id=2, policy_path=policies["walker"])],
    )
    assert config.worker_policies() == {"000001": policies["sitter"], "000002": policies["walker"]}


def test_eval_needs_a_policy_for_every_worker(policies: dict[str, Path]) -> None:
    with pytest.raises(ValidationError, match="needs a policy for worker 000002"):
        TrainConfig(
            **LAKE,
            episodes=1,
            mode="eval",
            workers=[WorkerSpec(worker_id=1, policy_path=policies["walker"]), 2],
        )


def test_worker_policy_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        WorkerSpec(worker_id=1, policy_path=tmp_path / "nope.json")
    with pytest.raises(ValidationError, match="is a folder"):
        WorkerSpec(worker_id=1, policy_path=tmp_path)


def test_a_file_that_is_not_a_policy_fails_validation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(ValidationError, match="is not an nbtrain tabular or tile_sarsa policy"):
        TrainConfig(**LAKE, episodes=1, mode="eval", policy_path=bad)


# -- self-contained policies: eval needs only policy_path ----------------------------------


def cartpole_policy(path: Path) -> Path:
    env = gym.make("CartPole-v1")
    agent = QLearningAgent(
        env.observation_space,
        env.action_space,
        seed=0,
        bins=[1, 1, 6, 6],
        bounds=[None, [-3.0, 3.0], None, [-3.0, 3.0]],
    )
    for state, row in enumerate(agent.q):  # push the cart the way the pole leans
        row[0 if (state // 6) < 3 else 1] = 1.0
    agent.save(path)
    return path


def test_cartpole_eval_config_needs_only_the_policy(tmp_path: Path) -> None:
    policy = cartpole_policy(tmp_path / "cartpole.json")
    config = TrainConfig(env_id="CartPole-v1", episodes=2, mode="eval", policy_path=policy)
    assert config.agent == "q_learning"  # named by the policy file
    (worker,) = config.worker_configs()
    assert worker.agent_kwargs["bins"] == [1, 1, 6, 6]
    assert worker.agent_kwargs["bounds"][1] == [-3.0, 3.0]
    with pytest.raises(ValidationError, match=r"bins=4 disagrees with the policy file"):
        TrainConfig(
            env_id="CartPole-v1",
            episodes=2,
            mode="eval",
            policy_path=policy,
            agent_kwargs={"bins": 4},
        )
    with pytest.raises(ValidationError, match=r"was saved by 'q_learning'.*use agent='q_learning'"):
        TrainConfig(
            env_id="CartPole-v1",
            agent="tile_sarsa",
            agent_kwargs={"bounds": [[-5, 5]] * 4},
            episodes=2,
            mode="eval",
            policy_path=policy,
        )


def test_cartpole_eval_runs_with_only_policy_path(tmp_path: Path, db: Path) -> None:
    policy = cartpole_policy(tmp_path / "cartpole.json")
    run = nbtrain.launch(
        {"env_id": "CartPole-v1", "episodes": 3, "mode": "eval", "policy_path": str(policy)},
        db=db,
    )
    assert run.wait(timeout=120) == {"000001": "completed"}
    episodes = run.episodes()
    assert len(episodes) == 3
    assert (episodes["length"] > 20).all()  # it balances for a while: the bins were right
    steps = run.steps(worker_id=1)
    assert not steps["extras"].astype(str).str.contains("epsilon").any()  # greedy, no learning


def test_tile_sarsa_policy_evaluates_with_only_its_path(tmp_path: Path) -> None:
    env = gym.make("MountainCar-v0")
    path = tmp_path / "car.json"
    TileSarsaAgent(env.observation_space, env.action_space, seed=0, tiles=4).save(path)
    config = TrainConfig(env_id="MountainCar-v0", episodes=1, mode="eval", policy_path=path)
    assert config.agent == "tile_sarsa"
    assert config.worker_configs()[0].agent_kwargs["tiles"] == [4, 4]


# -- evaluation_config launched end to end -------------------------------------------------


def test_each_worker_plays_its_own_policy_end_to_end(db: Path, policies: dict[str, Path]) -> None:
    train = TrainConfig(**LAKE, episodes=50, workers=["walker", "sitter"])
    run = nbtrain.launch(evaluation_config(train, policies, episodes=3), db=db)
    assert run.worker_ids == ["walker", "sitter"]
    assert run.wait(timeout=120) == {"walker": "completed", "sitter": "completed"}
    episodes = run.episodes()
    walker = episodes[episodes["worker_id"] == "walker"]
    sitter = episodes[episodes["worker_id"] == "sitter"]
    assert walker["total_reward"].tolist() == [1.0, 1.0, 1.0]
    assert walker["length"].tolist() == [6, 6, 6]
    assert sitter["total_reward"].tolist() == [0.0, 0.0, 0.0]
    assert sitter["length"].tolist() == [100, 100, 100]  # FrozenLake's registered limit
    assert sitter["truncated"].all()
    assert not any((db.parent / "nbtrain-runs" / run.run_id).glob("policy-*.json"))


def test_equivalent_structure_kwargs_are_accepted(tmp_path: Path) -> None:
    env = gym.make("MountainCar-v0")
    path = tmp_path / "car.json"
    TileSarsaAgent(env.observation_space, env.action_space, seed=0, tiles=4).save(path)
    same = TrainConfig(
        env_id="MountainCar-v0",
        agent="tile_sarsa",
        agent_kwargs={"tiles": 4, "tilings": 8},  # the int form of the file's [4, 4]
        episodes=1,
        mode="eval",
        policy_path=path,
    )
    assert same.worker_configs()[0].agent_kwargs["tiles"] == 4
    with pytest.raises(ValidationError, match=r"tiles=8 disagrees with the policy file"):
        TrainConfig(
            env_id="MountainCar-v0",
            agent="tile_sarsa",
            agent_kwargs={"tiles": 8},
            episodes=1,
            mode="eval",
            policy_path=path,
        )
    policy = cartpole_policy(tmp_path / "cartpole.json")
    TrainConfig(
        env_id="CartPole-v1",
        episodes=1,
        mode="eval",
        policy_path=policy,
        agent_kwargs={"bins": [1, 1, 6, 6], "bounds": [None, [-3, 3], None, [-3, 3]]},
    )


def test_eval_configs_rebuild_from_their_payload(policies: dict[str, Path]) -> None:
    """What restart() and Run.config() do: the stored payload gives the same config back."""
    train = TrainConfig(**LAKE, episodes=5, workers=["walker", "sitter"], checkpoint_every=None)
    for config in (train, evaluation_config(train, policies, episodes=2)):
        again = TrainConfig.from_payload(config.canonical_payload())
        assert again.digest == config.digest
        assert again.worker_policies() == config.worker_policies()
        assert again.worker_configs() == config.worker_configs()


def _notebook_agent() -> type:
    """A class made inside a function: not importable, so it travels by value, as a class
    defined in a notebook cell does. Trained, it walks the lake's path and saves it."""

    class Walker:
        def __init__(self, observation_space: object, action_space: object, **kw: object):
            self.moves: dict[int, int] = {}

        def act(self, obs: int, explore: bool = True) -> int:
            path = {0: 1, 4: 1, 8: 2, 9: 1, 13: 2, 14: 2}
            return path.get(int(obs), 0) if explore else self.moves.get(int(obs), 0)

        def learn(self, *args: object) -> None:
            return None

        def save(self, path: str) -> None:

            moves = {0: 1, 4: 1, 8: 2, 9: 1, 13: 2, 14: 2}
            with open(path, "w") as f:
                json.dump({str(k): v for k, v in moves.items()}, f)

        def load(self, path: str) -> None:

            with open(path) as f:
                self.moves = {int(k): v for k, v in json.load(f).items()}

    return Walker


def test_a_notebook_defined_agent_is_evaluated_from_the_run_s_own_row(db: Path) -> None:
    """Regression: evaluate() rebuilt the config with run.config(), which asks for a
    notebook agent to be passed again, and evaluate() takes no agent: it always failed."""
    run = nbtrain.launch(TrainConfig(**LAKE, episodes=3, workers=2, agent=_notebook_agent()), db=db)
    assert run.wait(timeout=120) == {"000001": "completed", "000002": "completed"}
    evaluation = run.evaluate(episodes=2)
    assert evaluation.wait(timeout=120) == {"000001": "completed", "000002": "completed"}
    episodes = evaluation.episodes()
    assert episodes["total_reward"].tolist() == [1.0] * 4  # the saved path, played greedily
    trained, evaluated = (r.store.run(r.run_id)["config"]["agent"]
                          for r in (run, evaluation))  # fmt: skip
    assert evaluated == trained
    assert trained["kind"] == "pickle"
