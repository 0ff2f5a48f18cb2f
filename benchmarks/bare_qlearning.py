"""The loop a user would write without nbtrain: Gymnasium + tabular Q-learning, no logging.

Run as its own process by ``vs_bare.py`` and ``peers.py``. It reproduces the trajectory of
nbtrain's built-in ``q_learning`` agent exactly (same defaults, the same seeded
``random.Random`` drawn in the same order, the same per-episode reset seeds), so the step
counts and reward sums of both must be equal; the callers assert that. It imports only
gymnasium and the standard library, as a bare script would.

    python benchmarks/bare_qlearning.py --seed SEED --episodes N [--slippery] [--lean]

``--lean`` steps the environment without the two check wrappers ``gym.make`` adds
(``PassiveEnvChecker``, ``OrderEnforcing``), only ``TimeLimit`` around it: what a nbtrain
worker does once their checks have run (``nbtrain/worker/envchain.py``). ``vs_bare.py`` uses
it to tell nbtrain's own cost from what it saves on gymnasium's wrappers.

Prints one JSON line: steps, reward sum, loop start/end (``time.time()``), CPU seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from collections.abc import Callable
from typing import Any

ALPHA, GAMMA = 0.1, 0.99
EPSILON, EPSILON_MIN, EPSILON_DECAY = 1.0, 0.05, 0.99
MAX_STEPS = 100

EpisodeHook = Callable[[int, float, int], None]
StepHook = Callable[[int, int, int, float, int, float], None]


def episode_seed(worker_seed: int, ep_index: int) -> int:
    """Written out here rather than imported, as nbtrain's ``seeding.episode_seed`` does it:
    the first 8 bytes of sha256("seed\\x1fepisode\\x1fep") modulo 2**32."""
    text = f"{worker_seed}\x1fepisode\x1f{ep_index}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % (1 << 32)


def train(
    seed: int,
    episodes: int,
    *,
    slippery: bool = False,
    lean: bool = False,
    on_step: StepHook | None = None,
    on_episode: EpisodeHook | None = None,
) -> dict[str, Any]:
    """Train and return the totals; ``on_step(ep, t, action, reward, obs, td_error)`` and
    ``on_episode(ep, total_reward, length)`` let ``peers.py`` log the same loop."""
    import gymnasium as gym

    env = gym.make("FrozenLake-v1", is_slippery=slippery, max_episode_steps=MAX_STEPS)
    if lean:
        env = gym.wrappers.TimeLimit(env.unwrapped, MAX_STEPS)
    n_actions = int(env.action_space.n)
    q = [[0.0] * n_actions for _ in range(int(env.observation_space.n))]
    rand = random.Random(seed).random
    epsilon = EPSILON
    step = env.step
    steps = 0
    reward_sum = 0.0
    started = time.time()
    for ep in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, ep))
        total = 0.0
        t = 0
        while True:
            row = q[obs]
            if rand() < epsilon:
                action = int(rand() * n_actions)
            else:
                best = max(row)
                if row.count(best) == 1:
                    action = row.index(best)
                else:
                    ties = [i for i, v in enumerate(row) if v == best]
                    action = ties[int(rand() * len(ties))]
            next_obs, reward, terminated, truncated, _ = step(action)
            old = row[action]
            target = float(reward) if terminated else float(reward) + GAMMA * max(q[next_obs])
            delta = target - old
            row[action] = old + ALPHA * delta
            total += reward
            if on_step is not None:
                on_step(ep, t, action, reward, next_obs, delta)
            t += 1
            obs = next_obs
            if terminated or truncated:
                break
        epsilon = max(EPSILON_MIN, epsilon * EPSILON_DECAY)
        if on_episode is not None:
            on_episode(ep, total, t)
        steps += t
        reward_sum += total
    ended = time.time()
    env.close()
    return {"steps": steps, "reward_sum": reward_sum, "loop_start": started, "loop_end": ended}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--episodes", type=int, required=True)
    parser.add_argument("--slippery", action="store_true")
    parser.add_argument("--lean", action="store_true", help="no check wrappers (see above)")
    args = parser.parse_args()
    result = train(args.seed, args.episodes, slippery=args.slippery, lean=args.lean)
    result["cpu"] = time.process_time()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
