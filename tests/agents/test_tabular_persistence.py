"""Saving and loading tabular policies (JSON)."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
from gymnasium import spaces

from nbtrain.agents.tabular import (
    ExpectedSarsaAgent,
    QLearningAgent,
    SarsaAgent,
)


@pytest.fixture
def trained(train):
    env = gym.make("FrozenLake-v1", is_slippery=False)
    agent = QLearningAgent(env.observation_space, env.action_space, seed=3)
    train(env, agent, 300, seed=3)
    return env, agent


def _unique_greedy_states(agent):
    return [s for s, row in enumerate(agent.q) if row.count(max(row)) == 1]


@pytest.mark.parametrize("cls", [QLearningAgent, SarsaAgent, ExpectedSarsaAgent])
def test_round_trip_gives_identical_greedy_policy(trained, tmp_path, cls, greedy_return):
    env, agent = trained
    path = tmp_path / "policy.json"
    agent.save(path)
    other = cls(env.observation_space, env.action_space, seed=99, epsilon=0.7, epsilon_min=0.1)
    other.load(path)
    assert other.q == agent.q
    assert other.epsilon == 0.7  # load takes the values only: the configured ε stays
    assert other.alpha == 0.1  # hyperparameters stay
    assert other.epsilon_min == 0.1
    states = _unique_greedy_states(agent)
    assert len(states) >= 6  # at least the path to the goal
    assert [other.act(s, explore=False) for s in states] == [
        agent.act(s, explore=False) for s in states
    ]
    assert greedy_return(env, other) == 1.0


def test_file_content(trained, tmp_path):
    _, agent = trained
    path = tmp_path / "p.json"
    agent.save(path)
    data = json.loads(path.read_text())
    assert data["format"] == "nbtrain.tabular"
    assert data["algorithm"] == "q_learning"
    assert (data["n_states"], data["n_actions"]) == (16, 4)
    assert data["observation"] == {"kind": "discrete", "n": 16, "start": 0}
    assert data["hyperparameters"]["gamma"] == 0.99
    assert len(data["q"]) == 16
    assert all(len(r) == 4 for r in data["q"])
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]  # no temp file left behind


def test_box_policy_round_trip(tmp_path):
    space = gym.make("CartPole-v1").observation_space
    kw = {"bins": [1, 2, 3, 4], "bounds": [None, [-3, 3], None, [-2, 2]]}
    a = QLearningAgent(space, spaces.Discrete(2), seed=0, **kw)
    a.q[5][1] = 2.5
    a.save(tmp_path / "p.json")
    b = QLearningAgent(space, spaces.Discrete(2), seed=1, **kw)
    b.load(tmp_path / "p.json")
    assert b.q == a.q
    c = QLearningAgent(space, spaces.Discrete(2), seed=1, bins=[1, 2, 4, 3], bounds=kw["bounds"])
    with pytest.raises(ValueError, match="discretizes observations as"):
        c.load(tmp_path / "p.json")  # same table shape, different cells


def test_wrong_shape_is_a_clear_error(trained, tmp_path):
    _, agent = trained
    agent.save(tmp_path / "p.json")
    env8 = gym.make("FrozenLake8x8-v1", is_slippery=False)
    big = QLearningAgent(env8.observation_space, env8.action_space, seed=0)
    with pytest.raises(ValueError, match=r"shape \(16, 4\); this agent needs \(64, 4\)"):
        big.load(tmp_path / "p.json")


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update(format="other"), "not an nbtrain tabular policy"),
        (lambda d: d.update(version=99), "version 99"),
        (lambda d: d.update(algorithm="dqn"), "algorithm 'dqn'"),
        (lambda d: d.update(q=[[0.0] * 4] * 15 + [[0.0] * 3]), "ragged rows"),
        (lambda d: d.update(q="x"), "not a list of lists"),
        (lambda d: d["q"][0].__setitem__(0, "a"), "non-numeric Q-values"),
        (lambda d: d.update(action_start=1), "action_start 1"),
    ],
)
def test_bad_policy_files(trained, tmp_path, mutate, match):
    _, agent = trained
    path = tmp_path / "p.json"
    agent.save(path)
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=match):
        agent.load(path)
    with pytest.raises(ValueError, match=match):
        agent.restore(path)


def test_restore_rejects_a_bad_epsilon(trained, tmp_path):
    _, agent = trained
    path = tmp_path / "p.json"
    agent.save(path)
    data = json.loads(path.read_text())
    data["epsilon"] = 3
    path.write_text(json.dumps(data))
    agent.load(path)  # values only: ε is not read
    with pytest.raises(ValueError, match="epsilon=3"):
        agent.restore(path)


def test_not_json(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{nope")
    agent = QLearningAgent(spaces.Discrete(2), spaces.Discrete(2), seed=0)
    with pytest.raises(ValueError, match="not valid JSON"):
        agent.load(path)
    with pytest.raises(FileNotFoundError):
        agent.load(tmp_path / "missing.json")
