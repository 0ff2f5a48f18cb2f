"""Gymnasium's one-time checks leave the wrapper chain once they have run, and only then."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit
from tests.kit.worker import make_config, run_worker

from nbtrain.wire import events as ev
from nbtrain.worker.envchain import time_limit_bypass, unlink_spent_checks


def _chain(env: Any) -> list[type]:
    kinds = []
    while isinstance(env, gym.Wrapper):
        kinds.append(type(env))
        env = env.env
    return [*kinds, type(env)]


def _lake(**kwargs: Any) -> Any:
    return gym.make("FrozenLake-v1", is_slippery=False, max_episode_steps=100, **kwargs)


# gymnasium >= 1.4 checks that two steps do not share their data: the checker is spent
# after the second step, not the first.
REUSE_CHECK = hasattr(_lake().env.env, "checked_data_reuse")
needs_reuse_check = pytest.mark.skipif(not REUSE_CHECK, reason="gymnasium < 1.4")


@needs_reuse_check
def test_both_layers_go_once_reset_and_two_steps_have_run() -> None:
    env = _lake()
    assert _chain(env)[:3] == [TimeLimit, OrderEnforcing, PassiveEnvChecker]
    assert unlink_spent_checks(env, rendering=False) is False  # nothing has run yet
    assert _chain(env)[:3] == [TimeLimit, OrderEnforcing, PassiveEnvChecker]
    env.reset(seed=1)
    env.step(1)
    # reset done: the order guard goes; the checker has yet to compare two steps
    assert unlink_spent_checks(env, rendering=False) is False
    assert _chain(env)[:2] == [TimeLimit, PassiveEnvChecker]
    env.step(1)
    assert unlink_spent_checks(env, rendering=False) is True
    assert _chain(env) == [TimeLimit, type(env.unwrapped)]
    assert unlink_spent_checks(env, rendering=False) is True  # calling again changes nothing


def test_the_checker_stays_until_it_has_checked_a_render() -> None:
    env = _lake(render_mode="ansi")
    env.reset(seed=1)
    env.step(2)
    env.step(2)
    assert unlink_spent_checks(env, rendering=True) is False
    assert PassiveEnvChecker in _chain(env)
    env.render()
    assert unlink_spent_checks(env, rendering=True) is True
    assert PassiveEnvChecker not in _chain(env)


def test_an_outermost_check_is_left_to_whoever_holds_it() -> None:
    env = gym.make("FrozenLake-v1", disable_env_checker=True).env  # OrderEnforcing on top
    env.reset(seed=0)
    assert unlink_spent_checks(env, rendering=False) is True
    assert _chain(env) == [OrderEnforcing, type(env.unwrapped)]


def test_other_wrappers_keep_their_place() -> None:
    env = gym.wrappers.RecordEpisodeStatistics(_lake())
    env.reset(seed=3)
    env.step(1)
    env.step(2)
    assert unlink_spent_checks(env, rendering=False) is True
    assert _chain(env) == [gym.wrappers.RecordEpisodeStatistics, TimeLimit, type(env.unwrapped)]


def test_the_spec_still_says_what_gym_make_made() -> None:
    env = _lake()
    made = env.spec
    env.reset(seed=4)
    env.step(0)
    env.step(0)
    assert unlink_spent_checks(env, rendering=False) is True
    assert env.spec == made
    assert (env.spec.disable_env_checker, env.spec.order_enforce) == (False, True)
    assert _chain(gym.make(env.spec))[:3] == [TimeLimit, OrderEnforcing, PassiveEnvChecker]


def test_a_layer_under_a_read_only_env_stays() -> None:
    class Pinned(gym.Wrapper[Any, Any, Any, Any]):
        def __init__(self, env: Any) -> None:  # (no Wrapper.__init__: it would set env)
            self._inner = env

        @property  # type: ignore[override]
        def env(self) -> Any:
            return self._inner

    guard = gym.make("FrozenLake-v1", disable_env_checker=True).env
    guard.reset(seed=0)
    pinned = Pinned(guard)
    assert unlink_spent_checks(pinned, rendering=False) is True  # nothing left to retry
    assert pinned.env is guard


@pytest.mark.parametrize("env_id", ["FrozenLake-v1", "CliffWalking-v1", "Taxi-v4"])
def test_the_environment_steps_exactly_as_before(env_id: str) -> None:
    """Same seeds, same actions: the same transitions, truncation by the time limit included."""
    kept, unlinked = gym.make(env_id, max_episode_steps=30), gym.make(env_id, max_episode_steps=30)
    rng = list(range(7)) * 200
    for ep in range(6):
        assert repr(kept.reset(seed=ep)) == repr(unlinked.reset(seed=ep))  # (info: arrays)
        for t in range(40):
            action = rng[ep * 41 + t] % int(kept.action_space.n)
            a, b = kept.step(action), unlinked.step(action)
            assert repr(a) == repr(b)
            if a[2] or a[3]:
                break
        unlink_spent_checks(unlinked, rendering=False)
    assert _chain(unlinked)[:2] == [TimeLimit, type(unlinked.unwrapped)]


@needs_reuse_check
def test_a_worker_still_gets_the_checkers_warning(tmp_path: Path) -> None:
    """The info-reuse warning comes at the second step, in the second episode: a worker that
    unlinked the checker after its first episode would never show it."""
    config = make_config(
        tmp_path, env_id="worker_agents:NbtSharedInfoLake-v0", episodes=4, agent="PlainQLearning"
    )
    result = run_worker(config)
    assert result.code == 0, result.stderr
    assert result.stderr.count(b"The infos returned by `step` and the following `step`") == 1
    lengths = [n for e in result.wire if isinstance(e, ev.Episodes) for n in e.length]
    assert lengths == [1, 3, 3, 3]


def test_a_checker_without_the_data_reuse_check_goes_after_its_first_step() -> None:
    """Gymnasium before 1.4 has no ``checked_data_reuse``: its checker is spent after the
    first reset and step (the regression: an AttributeError in every such worker)."""
    env = _lake()
    env.reset(seed=2)
    env.step(1)
    checker = env.env.env
    assert type(checker) is PassiveEnvChecker
    if REUSE_CHECK:
        del checker.checked_data_reuse
    assert unlink_spent_checks(env, rendering=False) is True
    assert _chain(env) == [TimeLimit, type(env.unwrapped)]


@pytest.mark.parametrize(
    ("agent", "frames"),
    [
        ("q_learning", "none"),  # the one-call tabular episode
        ("PlainQLearning", "none"),  # the generic act/learn loop
        ("q_learning", "ansi"),  # frames: the generic loop, and the checker's render check
    ],
)
def test_a_worker_steps_without_the_checks_after_its_first_episode(
    tmp_path: Path, agent: str, frames: str
) -> None:
    """A step's reward says whether it went through the two layers (``CheckProbe``): every
    step of the first episode does, none after it (regression guard for the worker's call)."""
    fields: dict[str, Any] = {"env_id": "worker_agents:NbtCheckProbe-v0", "episodes": 4}
    if agent != "q_learning":
        fields["agent"] = agent
    if frames != "none":
        fields["telemetry"] = {"frames": frames}
    result = run_worker(make_config(tmp_path, **fields))
    assert result.code == 0, result.stderr
    batches = [e for e in result.wire if isinstance(e, ev.Episodes)]
    assert [n for e in batches for n in e.length] == [3, 3, 3, 3]
    assert [r for e in batches for r in e.total_reward] == [3.0, 0.0, 0.0, 0.0]


def test_the_time_limit_bypass_steps_the_layer_below_with_its_limit() -> None:
    env = _lake()
    below = time_limit_bypass(env)
    assert below is not None
    step, limit = below
    assert limit == 100
    assert step.__self__ is env.env  # type: ignore[attr-defined]


class _OwnLimit(TimeLimit):  # type: ignore[type-arg]
    pass


def _instance_step(env: Any) -> Any:
    env.step = lambda action: env.env.step(action)
    return env


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: _OwnLimit(gym.make("FrozenLake-v1").unwrapped, 5), id="subclass"),
        pytest.param(lambda: _instance_step(_lake()), id="step-set-on-the-instance"),
        pytest.param(lambda: _lake().env, id="no-time-limit"),
        pytest.param(lambda: gym.wrappers.RecordEpisodeStatistics(_lake()), id="not-outermost"),
    ],
)
def test_no_bypass_where_the_limit_would_not_be_timelimits(make: Any) -> None:
    assert time_limit_bypass(make()) is None


def test_no_bypass_when_timelimit_step_was_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    def step(self: Any, action: Any) -> Any:
        return self.env.step(action)

    monkeypatch.setattr(TimeLimit, "step", step)
    assert time_limit_bypass(_lake()) is None


def test_no_bypass_for_a_limit_that_is_not_a_positive_int() -> None:
    env = _lake()
    env._max_episode_steps = 0
    assert time_limit_bypass(env) is None
    env._max_episode_steps = 2.0  # type: ignore[assignment]
    assert time_limit_bypass(env) is None
