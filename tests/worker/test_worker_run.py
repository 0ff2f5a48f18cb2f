"""Complete worker runs through real pipes: event sequence, step telemetry, determinism,
restart, eval, frames and the ways to run by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
import pytest
from tests.kit.worker import Result, make_config, run_worker, worker_env

from nbtrain.ids import new_run_id, parse_episode_id
from nbtrain.seeding import episode_seed
from nbtrain.wire import events as ev
from nbtrain.worker.config_file import AgentRef


def steps_by_episode(result: Result) -> dict[int, list[int]]:
    seen: dict[int, list[int]] = defaultdict(list)
    for batch in result.of(ev.Steps):
        columns = [batch.ep_index, batch.action, batch.reward, batch.terminated]
        columns += [batch.truncated, batch.obs, batch.step_extras(), batch.ts]
        assert all(len(c) == len(batch) for c in columns)
        for ep, index in zip(batch.ep_index, batch.step_index, strict=True):
            seen[ep].append(index)
    return seen


def test_complete_run_event_sequence(tmp_path: Path) -> None:
    config = make_config(tmp_path, episodes=4)
    result = run_worker(config, "1")
    assert result.code == 0, result.stderr.decode()
    assert result.errors == []
    started, ended = result.events[0], result.events[-1]
    assert isinstance(started, ev.Started)
    assert isinstance(ended, ev.Ended)
    assert (started.worker_id, started.episodes, started.start_episode) == ("000001", 4, 0)
    assert started.agent == "q_learning"
    assert started.mode == "train"
    assert ended.status == "completed"
    assert ended.error is None
    assert result.types.count("Started") == result.types.count("Ended") == 1
    episodes = result.of(ev.Episode)
    assert [e.ep_index for e in episodes] == [0, 1, 2, 3]
    # On the wire they are Episodes batches (the first one alone: a new run shows at once).
    sent = [type(e).__name__ for e in result.wire if isinstance(e, ev.Episode | ev.Episodes)]
    assert sent[0] == "Episodes"
    assert "Episode" not in sent
    # A built-in tabular agent's ε goes as the batch's extras column (wire v5), no dicts.
    batches = [e for e in result.wire if isinstance(e, ev.Episodes)]
    assert all(b.extras == [] and list(b.extras_columns or ()) == ["epsilon"] for b in batches)
    run_id = started.run_id
    for episode in episodes:
        assert parse_episode_id(episode.episode_id) == (run_id, "000001", episode.ep_index)
        assert episode.seed == episode_seed(7, episode.ep_index)
        assert episode.terminated or episode.truncated
        assert 0 < episode.length <= 100
        assert episode.started_at <= episode.ended_at
        assert "epsilon" in episode.extras
    # Every step of every episode, in order, before its Episode event.
    seen = steps_by_episode(result)
    assert {ep: len(idx) for ep, idx in seen.items()} == {e.ep_index: e.length for e in episodes}
    assert all(idx == list(range(len(idx))) for idx in seen.values())
    for episode in episodes:
        position = result.events.index(episode)
        earlier = [b for b in result.events[:position] if isinstance(b, ev.Steps)]
        assert sum(b.ep_index.count(episode.ep_index) for b in earlier) == episode.length
    grids = result.of(ev.GridMap)
    assert [g.ep_index for g in grids] == [0]  # the map never changes: sent once
    assert grids[0].rows == ["SFFF", "FHFH", "FFFH", "HFFG"]
    assert grids[0].kind == "frozenlake"
    (artifact,) = result.of(ev.Artifact)
    assert Path(artifact.path) == tmp_path / "policy-000001.json"
    assert Path(artifact.path).exists()
    assert result.types.index("Artifact") < len(result.events) - 1
    assert ended.episodes_done == 4
    assert ended.steps_done == sum(e.length for e in episodes)
    batch = result.of(ev.Steps)[0]
    assert all(isinstance(x, int) for x in batch.obs + batch.action)
    assert set(batch.step_extras()[0]) == {"epsilon", "td_error"}
    assert all(e.worker_id == "000001" and e.run_id == run_id for e in result.events)


@pytest.mark.parametrize(
    ("steps", "expect"),
    [
        ("all", lambda n: list(range(n))),
        ("none", lambda n: []),
        (3, lambda n: list(range(0, n, 3))),
    ],
)
def test_steps_telemetry_setting(tmp_path: Path, steps: Any, expect: Any) -> None:
    config = make_config(tmp_path, episodes=3, telemetry={"steps": steps})
    result = run_worker(config)
    assert result.code == 0, result.stderr.decode()
    seen = steps_by_episode(result)
    for episode in result.of(ev.Episode):
        assert seen.get(episode.ep_index, []) == expect(episode.length)
    assert len(result.of(ev.Episode)) == 3


def test_same_config_gives_identical_returns(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        config = make_config(folder, episodes=30, run_id="01J00000000000000000000000", seed=11)
        result = run_worker(config)
        assert result.code == 0
        runs.append([(e.total_reward, e.length) for e in result.of(ev.Episode)])
    assert runs[0] == runs[1]
    assert len({length for _, length in runs[0]}) > 1  # not a degenerate constant run


def test_cliffwalking_grid_layout(tmp_path: Path) -> None:
    config = make_config(tmp_path, env_id="CliffWalking-v1", episodes=1)
    result = run_worker(config)
    (grid,) = result.of(ev.GridMap)
    assert grid.kind == "cliffwalking"
    assert grid.rows[3] == "SCCCCCCCCCCG"
    assert grid.rows[0] == "." * 12


def test_restart_continues_episodes_and_policy(tmp_path: Path) -> None:
    run_id = "01J00000000000000000000001"
    first = run_worker(make_config(tmp_path, episodes=5, run_id=run_id))
    assert first.code == 0
    policy = tmp_path / "policy-000001.json"
    before = policy.read_bytes()
    restarted = run_worker(make_config(tmp_path, episodes=8, run_id=run_id, start_episode=5))
    assert restarted.code == 0, restarted.stderr.decode()
    assert restarted.events[0].start_episode == 5
    assert [e.ep_index for e in restarted.of(ev.Episode)] == [5, 6, 7]
    # Learning continued from the saved table: epsilon picks up where it stopped.
    eps_first = first.of(ev.Episode)[-1].extras["epsilon"]
    eps_next = restarted.of(ev.Episode)[0].extras["epsilon"]
    assert eps_next < eps_first
    assert policy.read_bytes() != before
    done = run_worker(make_config(tmp_path, episodes=8, run_id=run_id, start_episode=8))
    assert done.types == ["Started", "Artifact", "Ended"]
    assert done.events[-1].status == "completed"


def test_eval_plays_greedily_from_saved_policy(tmp_path: Path) -> None:
    train_kwargs = {"epsilon_decay": 0.97, "alpha": 0.5}
    env_kwargs = {"is_slippery": False}
    trained = run_worker(
        make_config(
            tmp_path,
            episodes=300,
            env_kwargs=env_kwargs,
            agent_kwargs=train_kwargs,
            telemetry={"steps": "none"},
        )
    )
    assert trained.code == 0
    policy = tmp_path / "policy-000001.json"
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    result = run_worker(
        make_config(
            eval_dir, episodes=3, mode="eval", policy_path=str(policy), env_kwargs=env_kwargs
        )
    )
    assert result.code == 0, result.stderr.decode()
    episodes = result.of(ev.Episode)
    assert [e.total_reward for e in episodes] == [1.0, 1.0, 1.0]  # solved, no exploration
    assert len({e.length for e in episodes}) == 1
    assert all(x is None for b in result.of(ev.Steps) for x in b.step_extras())  # no learning
    assert result.of(ev.Artifact) == []
    assert not (eval_dir / "policy-000001.json").exists()


def test_eval_without_policy_fails_clearly(tmp_path: Path) -> None:
    result = run_worker(make_config(tmp_path, mode="eval"))
    assert result.code == 1
    assert "eval mode needs a trained policy" in result.events[-1].error


def test_missing_policy_path_fails_clearly(tmp_path: Path) -> None:
    result = run_worker(make_config(tmp_path, policy_path=str(tmp_path / "nope.json")))
    assert result.code == 1
    assert "nope.json' does not exist" in result.events[-1].error


def test_ansi_and_rgb_frames(tmp_path: Path) -> None:
    ansi = run_worker(make_config(tmp_path, episodes=1, telemetry={"frames": "ansi"}))
    frames = ansi.of(ev.Frame)
    assert frames
    assert all(f.kind == "ansi" and "F" in f.text for f in frames)
    rgb = run_worker(
        make_config(
            tmp_path,
            env_id="CliffWalking-v1",
            episodes=1,
            max_steps_per_episode=5,
            telemetry={"frames": "rgb_array", "frame_every": 2},
        )
    )
    assert rgb.code == 0, rgb.stderr.decode()
    frames = rgb.of(ev.Frame)
    assert frames[0].step_index == 0
    assert all(f.step_index % 2 == 0 for f in frames)
    h, w, c = frames[0].shape
    assert (c, max(h, w) <= 320, len(frames[0].data)) == (3, True, h * w * 3)


def test_box_observations_are_lists(tmp_path: Path) -> None:
    random_agent = AgentRef(kind="builtin", name="random")
    config = make_config(tmp_path, env_id="CartPole-v1", episodes=2, agent=random_agent)
    result = run_worker(config)
    assert result.code == 0, result.stderr.decode()
    batch = result.of(ev.Steps)[0]
    assert isinstance(batch.obs[0], list)
    assert len(batch.obs[0]) == 4
    assert isinstance(batch.action[0], int)
    assert result.of(ev.GridMap) == []


def test_jsonl_output_is_parseable_and_agent_prints_go_to_stderr(tmp_path: Path) -> None:
    config = make_config(tmp_path, episodes=2, agent="Chatty", agent_kwargs={"chars": 10})
    result = run_worker(config, args=("--jsonl",), telemetry=False, control=False)
    assert result.code == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    parsed = [json.loads(line) for line in lines]
    assert parsed[0]["type"] == "started"
    assert parsed[-1]["type"] == "ended"
    typed = [msgspec.json.decode(line, type=ev.Event) for line in lines]
    assert sum(isinstance(e, ev.Episode) for e in typed) == 2
    assert b"x" * 10 in result.stderr


def test_human_summary_without_pipes(tmp_path: Path) -> None:
    result = run_worker(make_config(tmp_path, episodes=2), telemetry=False, control=False)
    assert result.code == 0
    assert result.stdout == b""
    text = result.stderr.decode()
    assert "worker 000001 completed: 2 episodes" in text
    assert "Traceback" not in text


def test_module_entry_point_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nbtrain.worker", "--help"], capture_output=True, env=worker_env()
    )
    assert out.returncode == 0
    assert b"--worker-id" in out.stdout


def test_training_runs_with_a_relaxed_collector(tmp_path: Path) -> None:
    from nbtrain.worker.runtime import GC_THRESHOLD

    result = run_worker(make_config(tmp_path, agent="GcProbe", episodes=1), "1")
    assert result.code == 0, result.stderr.decode()
    (episode,) = result.of(ev.Episode)
    assert episode.extras["gc_threshold0"] == GC_THRESHOLD
    assert episode.extras["gc_frozen"] > 1000  # what imports and setup created is frozen


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        ("FloatExtras", "agent.learn() returned float; it must return a dict or None"),
        # regression: it said only "cannot encode object objects"
        ("OpaqueExtras", "agent.learn() returned extras that cannot be stored (cannot encode "
         "object objects); extras values must be numbers"),
        ("OpaqueEpisodeExtras", "agent.end_episode() returned extras that cannot be stored"),
    ],
)  # fmt: skip
def test_extras_that_cannot_be_sent_fail_the_worker_cleanly(
    tmp_path: Path, agent: str, message: str
) -> None:
    # Regression: the bad batch stayed pending, so sending `ended` failed again and the
    # worker died with an uncaught traceback; an unencodable value also left a half frame.
    result = run_worker(make_config(tmp_path, agent=agent, episodes=50), "1")
    assert result.code == 1
    assert result.errors == []  # no garbage on the wire
    ended = result.events[-1]
    assert isinstance(ended, ev.Ended)
    assert ended.status == "failed"
    assert message in (ended.error or "")
    assert not result.of(ev.Episode)  # no episode without its steps


def _without_times(result: Result) -> tuple[list[Any], list[Any]]:
    """Every step row and every episode, timestamps left out (batching depends on time)."""
    steps: list[Any] = []
    for batch in result.of(ev.Steps):
        columns = (batch.ep_index, batch.step_index, batch.action, batch.reward)
        columns += (batch.terminated, batch.truncated, batch.obs, batch.step_extras())
        steps.extend(zip(*columns, strict=True))
    episodes = [
        msgspec.structs.replace(e, started_at=0.0, ended_at=0.0) for e in result.of(ev.Episode)
    ]
    return steps, episodes


@pytest.mark.parametrize(
    ("builtin", "plain"),
    [
        ("q_learning", "PlainQLearning"),
        ("expected_sarsa", "PlainExpectedSarsa"),
        ("sarsa", "PlainSarsa"),
    ],
)
def test_built_in_tabular_agents_train_as_act_and_learn_would(
    tmp_path: Path, builtin: str, plain: str
) -> None:
    # the built-in agent gets the one-call episode (agents/tabular_fused.py), its subclass
    # the generic loop: the same seeds must give the same telemetry and the same table
    common: dict[str, Any] = {"episodes": 300, "checkpoint_every": None, "seed": 11}
    common["run_id"] = new_run_id()
    fast = run_worker(
        make_config(tmp_path, "fast.json", agent=AgentRef(kind="builtin", name=builtin), **common)
    )
    fast_q = json.loads((tmp_path / "policy-000001.json").read_text())["q"]
    generic = run_worker(make_config(tmp_path, "generic.json", agent=plain, **common))
    generic_q = json.loads((tmp_path / "policy-000001.json").read_text())["q"]
    assert fast.code == generic.code == 0
    assert len(fast.of(ev.Episode)) == 300
    assert sum(len(s) for s in fast.of(ev.Steps)) > 300
    assert _without_times(fast) == _without_times(generic)
    assert fast_q == generic_q


@pytest.mark.parametrize(("given", "seen"), [(None, "1"), ("3", "3")])
def test_a_worker_gives_openblas_one_thread_unless_told_otherwise(
    tmp_path: Path, given: str | None, seen: str
) -> None:
    env = worker_env()
    env.pop("OPENBLAS_NUM_THREADS", None)
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    result = run_worker(make_config(tmp_path, agent="BlasThreads", episodes=1), env=env)
    assert result.code == 0, result.stderr.decode()
    (steps, *_) = result.of(ev.Steps)
    assert {x["openblas_threads"] for x in steps.extras} == {seen}


@pytest.mark.parametrize(("bad", "shown"), [(99, "99 (int)"), ("left", "'left' (str)")])
def test_an_action_the_env_does_not_have_is_named_in_the_error(
    tmp_path: Path, bad: object, shown: str
) -> None:
    # Regression (QA): the worker failed with "KeyError: 99" from deep inside gymnasium.
    config = make_config(tmp_path, agent="BadAction", agent_kwargs={"bad": bad})
    result = run_worker(config)
    assert result.code == 1
    ended = result.events[-1]
    assert isinstance(ended, ev.Ended)
    assert ended.error is not None
    assert ended.error.startswith(f"ValueError: the agent's act() returned {shown}, which is "
                                  "not an action of the environment's action space "
                                  "Discrete(4)")  # fmt: skip
    assert "env.step raised" in ended.error


def test_an_env_s_own_error_on_a_valid_action_is_left_as_it_is(tmp_path: Path) -> None:
    config = make_config(tmp_path, env_id="worker_agents:NbtBrokenCorridor-v0",
                         agent="Raises", agent_kwargs={"fail_at": 10**9})  # fmt: skip
    result = run_worker(config)
    assert result.code == 1
    assert result.events[-1].error == "RuntimeError: the simulator crashed"
