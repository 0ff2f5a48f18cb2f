"""Tile coding and linear semi-gradient SARSA: indexes worked out by hand, one update by
hand, persistence, validation, and that it learns Mountain Car."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from nbtrain.agents import TileSarsaAgent
from nbtrain.agents.tilecoding import TileCoder, make_tile_coder

BOX2 = spaces.Box(low=np.array([0.0, 0.0]), high=np.array([1.0, 2.0]), dtype=np.float64)


def coder(tilings: int = 2, tiles: int = 4, hash_size: int = 4096) -> TileCoder:
    return make_tile_coder(
        BOX2, tilings=tilings, tiles=tiles, bounds=None, hash_size=hash_size, max_rows=10**6
    )


# -- the tile coder ------------------------------------------------------------------------


def test_offsets_are_the_books_asymmetric_displacements() -> None:
    c = make_tile_coder(
        spaces.Box(-1, 1, shape=(3,)),
        tilings=8,
        tiles=8,
        bounds=None,
        hash_size=10**6,
        max_rows=10**6,
    )
    # tiling t shifted by t*(1, 3, 5)/8 of a tile width, wrapped into [0, 1)
    assert c.offsets[1].tolist() == [1 / 8, 3 / 8, 5 / 8]
    assert c.offsets[3].tolist() == [3 / 8, (9 % 8) / 8, (15 % 8) / 8]
    assert c.offsets[0].tolist() == [0.0, 0.0, 0.0]


def test_tile_indexes_by_hand() -> None:
    c = coder()  # 2 tilings, 4x4 tiles over [0,1] x [0,2]; 5x5 with the shift row/column
    assert c.n_tiles == 2 * 5 * 5
    assert not c.hashed
    # obs (0.3, 1.1): in tile units (1.2, 2.2).
    # tiling 0, offsets (0, 0):      coords (1, 2) -> 1*5 + 2        = 7
    # tiling 1, offsets (1/2, 3/2 mod 1 = 1/2): (1.7, 2.7) -> (1, 2) -> 25 + 7 = 32
    assert c.indexes([0.3, 1.1]).tolist() == [7, 32]
    # obs (0.45, 0.0): units (1.8, 0.0); tiling 1: (2.3, 0.5) -> (2, 0) -> 25 + 10 = 35
    assert c.indexes([0.45, 0.0]).tolist() == [5, 35]


def test_observations_outside_the_bounds_are_clipped_to_the_edge_tiles() -> None:
    c = coder()
    assert c.indexes([-5.0, -1.0]).tolist() == c.indexes([0.0, 0.0]).tolist()
    assert c.indexes([9.0, 9.0]).tolist() == c.indexes([1.0, 2.0]).tolist()
    top = c.indexes([1.0, 2.0]).tolist()
    assert top == [4 * 5 + 4, 25 + 4 * 5 + 4]  # the extra tile covers the far edge


def test_one_tile_per_tiling_and_nearby_points_share_most_tiles() -> None:
    c = make_tile_coder(
        spaces.Box(-1.2, 0.6, shape=(2,)),
        tilings=8,
        tiles=8,
        bounds=None,
        hash_size=4096,
        max_rows=10**6,
    )
    a = c.indexes([0.0, 0.0])
    near = c.indexes([0.01, 0.0])
    far = c.indexes([0.5, -1.0])
    assert len(set(a.tolist())) == 8  # one distinct row per tiling
    assert len(set(a.tolist()) & set(near.tolist())) >= 6
    assert not set(a.tolist()) & set(far.tolist())


def test_hashing_keeps_rows_in_range_and_is_deterministic() -> None:
    c = make_tile_coder(
        spaces.Box(-1, 1, shape=(4,)),
        tilings=8,
        tiles=8,
        bounds=None,
        hash_size=97,
        max_rows=10**6,
    )
    assert c.hashed
    rng = np.random.default_rng(0)
    rows = np.concatenate([c.indexes(rng.uniform(-1, 1, 4)) for _ in range(200)])
    assert rows.min() >= 0
    assert rows.max() < 97
    assert len(set(rows.tolist())) > 80  # spread over the table
    x = [0.1, -0.2, 0.3, 0.9]
    assert c.indexes(x).tolist() == c.indexes(np.array(x)).tolist()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tilings": 0}, r"tilings=0 must be an integer in \[1, 1024\]"),
        ({"tiles": [4]}, "tiles=\\[4\\] must be an int or a list of 2 ints"),
        ({"tiles": 0}, "tiles=0 must be an integer"),
        ({"hash_size": 0}, "hash_size=0"),
        ({"bounds": [[0, 1]]}, "bounds=.* must be a list of 2"),
        ({"bounds": [[1, 0], None]}, "finite low < high"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"tilings": 2, "tiles": 4, "bounds": None, "hash_size": 64}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_tile_coder(BOX2, max_rows=10**6, **args)  # type: ignore[arg-type]


def test_infinite_bounds_and_non_box_spaces_are_refused() -> None:
    cartpole = gym.make("CartPole-v1")
    with pytest.raises(ValueError, match=r"dimension\(s\) 1 \[-inf, inf\], 3 \[-inf, inf\]"):
        TileSarsaAgent(cartpole.observation_space, cartpole.action_space, seed=0)
    bounded = [None, [-3.0, 3.0], None, [-3.5, 3.5]]
    TileSarsaAgent(cartpole.observation_space, cartpole.action_space, seed=0, bounds=bounded)
    with pytest.raises(TypeError, match="needs a Box observation space"):
        TileSarsaAgent(spaces.Discrete(4), spaces.Discrete(2))
    with pytest.raises(TypeError, match="needs a Discrete action space"):
        TileSarsaAgent(BOX2, spaces.Box(-1, 1, shape=(1,)))
    with pytest.raises(ValueError, match=r"epsilon_min=0\.2 must not exceed epsilon=0\.1"):
        TileSarsaAgent(BOX2, spaces.Discrete(2), epsilon=0.1, epsilon_min=0.2)


# -- the agent -----------------------------------------------------------------------------


def test_one_update_by_hand() -> None:
    agent = TileSarsaAgent(
        BOX2, spaces.Discrete(3), seed=0, alpha=0.25, gamma=0.5, tilings=2, tiles=4
    )
    s, s2 = np.array([0.3, 1.1]), np.array([0.45, 0.0])
    rows_s, rows_s2 = [7, 32], [5, 35]
    agent.w[rows_s2, 1] = [1.0, 3.0]  # q(s2, 1) = 4 is the only nonzero value at s2
    agent.w[rows_s, 2] = [0.5, 0.5]  # q(s, 2) = 1
    extras = agent.learn(s, 2, -1.0, s2, False, False)
    # ε = 0: A' = argmax q(s2, .) = 1, so target = -1 + 0.5*4 = 1, δ = 1 - 1 = 0
    assert extras == {"epsilon": 0.0, "td_error": 0.0}
    assert agent.act(s2) == 1  # A' is the action played next
    extras = agent.learn(s2, 1, 2.0, s, True, False)
    # terminal: target = 2, q(s2, 1) = 4, δ = -2; each active weight moves by alpha*δ = -0.5
    assert extras["td_error"] == -2.0
    assert agent.w[rows_s2, 1].tolist() == [0.5, 2.5]
    assert agent.q_values(s2)[1] == 3.0
    assert agent.q_values(s) == [0.0, 0.0, 1.0]


def test_truncation_bootstraps_but_carries_no_action() -> None:
    agent = TileSarsaAgent(
        BOX2, spaces.Discrete(2), seed=0, alpha=0.5, gamma=1.0, tilings=2, tiles=4
    )
    s, s2 = np.array([0.3, 1.1]), np.array([0.45, 0.0])
    agent.w[[5, 35], 0] = 1.0  # q(s2, 0) = 2
    assert agent.learn(s, 1, -1.0, s2, False, True)["td_error"] == 1.0  # -1 + 2 - 0
    assert agent._pending_action is None


def test_ties_are_broken_at_random_with_the_seed() -> None:
    def actions(seed: int) -> list[int]:
        agent = TileSarsaAgent(BOX2, spaces.Discrete(3), seed=seed, tilings=2, tiles=4)
        return [agent.act(np.array([0.5, 0.5])) for _ in range(30)]

    assert actions(1) == actions(1)
    assert set(actions(1)) == {0, 1, 2}
    assert actions(1) != actions(2)


def test_epsilon_schedule() -> None:
    agent = TileSarsaAgent(
        BOX2, spaces.Discrete(2), epsilon=1.0, epsilon_min=0.5, epsilon_decay=0.5
    )
    assert agent.end_episode() == {"epsilon": 0.5}
    assert agent.end_episode() == {"epsilon": 0.5}


def test_save_load_restore(tmp_path: Path) -> None:
    env = gym.make("MountainCar-v0")
    agent = TileSarsaAgent(
        env.observation_space, env.action_space, seed=0, epsilon=0.3, epsilon_decay=0.5
    )
    rng = np.random.default_rng(0)
    env.observation_space.seed(0)
    for _ in range(50):
        s, s2 = env.observation_space.sample(), env.observation_space.sample()
        agent.learn(s, int(rng.integers(3)), -1.0, s2, False, False)
    agent.end_episode()
    path = tmp_path / "policy.json"
    agent.save(path, episode=12)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["policy.json"]
    data = json.loads(path.read_text())
    assert data["episode"] == 12
    assert np.allclose(data["tile_coding"]["bounds"], [[-1.2, 0.6], [-0.07, 0.07]])
    fresh = TileSarsaAgent(env.observation_space, env.action_space, seed=5, epsilon=0.9)
    fresh.load(path)
    assert np.array_equal(fresh.w, agent.w)
    assert fresh.epsilon == 0.9  # load: values only
    assert fresh.restore(path) == 12
    assert fresh.epsilon == agent.epsilon == 0.15
    obs = env.observation_space.sample()
    assert fresh.q_values(obs) == agent.q_values(obs)


def test_load_refuses_another_tile_coding_and_tabular_files(tmp_path: Path) -> None:
    env = gym.make("MountainCar-v0")
    path = tmp_path / "p.json"
    TileSarsaAgent(env.observation_space, env.action_space, tiles=4).save(path)
    agent = TileSarsaAgent(env.observation_space, env.action_space)
    with pytest.raises(ValueError, match="uses the tile coding"):
        agent.load(path)
    from nbtrain.agents import QLearningAgent

    QLearningAgent(env.observation_space, env.action_space, bins=4).save(path)
    with pytest.raises(ValueError, match="not an nbtrain tile_sarsa policy"):
        agent.load(path)
    data = {
        "format": "nbtrain.tile_sarsa",
        "version": 1,
        "n_actions": 3,
        "action_start": 0,
        "tile_coding": agent.coder.config,
        "rows": [5000],
        "weights": [[1.0, 2.0, 3.0]],
    }
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="row index is outside"):
        agent.load(path)


def _run(agent: TileSarsaAgent, env: gym.Env, episodes: int, seed: int) -> list[int]:  # type: ignore[type-arg]
    lengths = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed * 1000 + ep)
        steps = 0
        while True:
            action = agent.act(obs)
            nxt, reward, terminated, truncated, _ = env.step(action)
            agent.learn(obs, action, reward, nxt, terminated, truncated)
            obs = nxt
            steps += 1
            if terminated or truncated:
                break
        agent.end_episode()
        lengths.append(steps)
    return lengths


def test_learns_mountain_car_within_a_few_dozen_episodes() -> None:
    env = gym.make("MountainCar-v0", max_episode_steps=10_000)
    agent = TileSarsaAgent(env.observation_space, env.action_space, seed=3)
    lengths = _run(agent, env, 40, seed=3)
    assert lengths[0] > 400  # the first episode wanders (the book: about a thousand steps)
    assert np.mean(lengths[-10:]) < 250
    assert all(n < 10_000 for n in lengths)  # every episode reaches the goal
