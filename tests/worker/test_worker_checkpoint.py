"""Checkpoints: written every ``checkpoint_every`` episodes, atomically and 0600, never
leaving temp files; a worker SIGKILLed mid-run and restarted resumes its ε and Q-values
from the checkpoint; a policy given in train mode never overrides the configured ε."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from tests.kit.worker import make_config, run_worker, start_worker

from nbtrain.agents import QLearningAgent
from nbtrain.ids import new_run_id
from nbtrain.wire import events as ev

POLICY = "policy-000001.json"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _step_epsilons(result: Any, ep_index: int) -> list[float]:
    out = []
    for batch in result.of(ev.Steps):
        for ep, extras in zip(batch.ep_index, batch.step_extras(), strict=True):
            if ep == ep_index:
                out.append(extras["epsilon"])
    return out


def test_checkpoints_every_n_episodes_and_at_the_end(tmp_path: Path) -> None:
    # step_delay flushes after every step: each snapshot is written at the next flush
    config = make_config(tmp_path, episodes=25, checkpoint_every=10, step_delay=0.0002)
    result = run_worker(config)
    assert result.code == 0, result.stderr.decode()
    artifacts = result.of(ev.Artifact)
    assert len(artifacts) == 3  # after episodes 10 and 20, and at the end (25)
    # each checkpoint follows the episode it was taken after
    order = [
        ("A" if isinstance(e, ev.Artifact) else e.ep_index)
        for e in result.events
        if isinstance(e, ev.Artifact | ev.Episode)
    ]
    assert order.index("A") == 10
    policy = tmp_path / POLICY
    data = json.loads(policy.read_text())
    assert data["episode"] == 25
    assert data["epsilon"] == result.of(ev.Episode)[-1].extras["epsilon"]
    assert stat.S_IMODE(policy.stat().st_mode) == 0o600
    assert _leftovers(tmp_path) == []


def test_a_fast_run_writes_one_checkpoint_per_flush_not_one_per_boundary(
    tmp_path: Path,
) -> None:
    # 5,000 FrozenLake episodes take well under a second: about one flush per 100 ms, each
    # writing the newest snapshot; a file per boundary would be 5,000 writes
    result = run_worker(make_config(tmp_path, episodes=5000, checkpoint_every=1))
    assert result.code == 0, result.stderr.decode()
    artifacts = result.of(ev.Artifact)
    assert 1 <= len(artifacts) < 500
    assert json.loads((tmp_path / POLICY).read_text())["episode"] == 5000
    # steps encoded early (a full event's worth at an episode end) still precede their
    # episode, all of them
    seen: dict[int, int] = {}
    for event in result.events:
        if isinstance(event, ev.Steps):
            for ep in event.ep_index:
                seen[ep] = seen.get(ep, 0) + 1
        elif isinstance(event, ev.Episode):
            assert seen.get(event.ep_index) == event.length
    assert len(seen) == 5000
    assert _leftovers(tmp_path) == []


def test_a_failing_worker_writes_the_snapshot_its_sent_episodes_cover(tmp_path: Path) -> None:
    # no flush happens between the snapshot after episode 5 and the failure in episode 8:
    # the failure path sends episodes 0-7 and then writes that snapshot
    config = make_config(
        tmp_path,
        agent="SnapshotThenFail",
        episodes=1000,
        checkpoint_every=5,
        agent_kwargs={"fail_after": 8},
    )
    result = run_worker(config)
    assert result.code == 1
    assert "agent exploded on purpose" in result.events[-1].error
    assert [e.ep_index for e in result.of(ev.Episode)] == list(range(8))
    assert json.loads((tmp_path / POLICY).read_text()) == {"episode": 5}
    kinds = [type(e).__name__ for e in result.events]
    assert kinds.index("Artifact") > max(i for i, k in enumerate(kinds) if k == "Episode")
    assert _leftovers(tmp_path) == []


def test_checkpoint_every_none_saves_only_at_the_end(tmp_path: Path) -> None:
    result = run_worker(make_config(tmp_path, episodes=25, checkpoint_every=None))
    assert len(result.of(ev.Artifact)) == 1


def test_sigkilled_worker_resumes_epsilon_and_q_from_its_checkpoint(tmp_path: Path) -> None:
    run_id = new_run_id()
    common: dict[str, Any] = {"run_id": run_id, "checkpoint_every": 50, "episodes": 1_000_000}
    handle = start_worker(make_config(tmp_path, "first.json", **common))
    handle.wait_for(lambda e: isinstance(e, ev.Artifact), timeout=60)
    first_ckpt = len([e for e in handle.events if isinstance(e, ev.Episode)])
    # a second checkpoint (a snapshot is written after the flush that follows its Stored)
    handle.wait_for(lambda e: len(handle.of(ev.Artifact)) >= 2, timeout=60)
    handle.wait_for(
        lambda e: isinstance(e, ev.Episode) and e.ep_index >= first_ckpt + 120, timeout=60
    )
    handle.popen.send_signal(signal.SIGKILL)
    killed = handle.wait(30)
    assert killed.code == -signal.SIGKILL
    assert not isinstance(killed.events[-1], ev.Ended)

    checkpoint = json.loads((tmp_path / POLICY).read_text())
    taken_after = checkpoint["episode"]
    assert taken_after % 50 == 0
    assert taken_after >= 100
    assert 0.05 <= checkpoint["epsilon"] < 0.9  # ε had decayed: 0.99 per episode
    stored = [e.ep_index for e in killed.of(ev.Episode)]
    start = max(stored) + 1  # what the dispatcher sets: after the last stored episode
    assert start >= taken_after

    restarted = run_worker(
        make_config(
            tmp_path, "second.json", **{**common, "episodes": start + 1}, start_episode=start
        )
    )
    assert restarted.code == 0, restarted.stderr.decode()
    started = restarted.events[0]
    assert isinstance(started, ev.Started)
    assert started.start_episode == start
    assert started.resumed_from == f"{POLICY}@ep{taken_after}"
    # ε continues from the checkpoint (not 1.0 again, nor one decay step from it)
    epsilons = _step_epsilons(restarted, start)
    assert epsilons
    assert set(epsilons) == {checkpoint["epsilon"]}
    # Q continues: after one more episode only the (state, action) pairs it visited differ
    final = json.loads((tmp_path / POLICY).read_text())
    assert final["episode"] == start + 1
    visited: set[tuple[int, int]] = set()
    state = 0  # FrozenLake always starts in state 0
    for batch in restarted.of(ev.Steps):
        for action, obs in zip(batch.action, batch.obs, strict=True):
            visited.add((state, action))
            state = obs
    changed = {
        (s, a)
        for s, (row, old) in enumerate(zip(final["q"], checkpoint["q"], strict=True))
        for a in range(4)
        if row[a] != old[a]
    }
    assert changed <= visited
    nonzero = sum(v != 0.0 for row in checkpoint["q"] for v in row)
    kept = sum(
        v != 0.0 and (s, a) not in visited
        for s, row in enumerate(checkpoint["q"])
        for a, v in enumerate(row)
    )
    assert nonzero >= 10
    assert kept >= 1  # values learned before the crash are still there, unchanged
    assert _leftovers(tmp_path) == []


def test_restart_without_a_checkpoint_starts_fresh_and_says_so(tmp_path: Path) -> None:
    result = run_worker(make_config(tmp_path, episodes=4, start_episode=3))
    assert result.code == 0
    assert result.events[0].resumed_from is None
    assert _step_epsilons(result, 3)[0] == 1.0


def test_stale_temp_files_of_a_killed_save_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / f".{POLICY}.4242.0.tmp"
    stale.write_text("half a checkpoi")
    inner = tmp_path / f"..{POLICY}.4242.0.tmp.4242.0.tmp"  # the agent's own temp inside it
    inner.write_text("half")
    swap = tmp_path / f".{POLICY}.swap.tmp"  # the periodic checkpoints' second file
    swap.write_text("an older checkpoint")
    other = tmp_path / ".policy-000002.json.4242.0.tmp"  # another worker's: not ours
    other.write_text("x")
    assert run_worker(make_config(tmp_path, episodes=2)).code == 0
    assert not stale.exists()
    assert not inner.exists()
    assert not swap.exists()
    assert other.exists()


def test_a_save_that_fails_leaves_no_temp_file_and_fails_the_worker(tmp_path: Path) -> None:
    result = run_worker(make_config(tmp_path, agent="BadSave", episodes=6, checkpoint_every=5))
    assert result.code == 1
    ended = result.events[-1]
    assert ended.status == "failed"
    assert "No space left on device (simulated in save)" in ended.error
    assert _leftovers(tmp_path) == []
    assert not (tmp_path / POLICY).exists()
    assert [e.ep_index for e in result.of(ev.Episode)] == [0, 1, 2, 3, 4]


def test_policy_bytes_that_are_not_bytes_fail_the_worker_by_name(tmp_path: Path) -> None:
    config = make_config(tmp_path, agent="TextPolicyBytes", episodes=6, checkpoint_every=2)
    result = run_worker(config)
    assert result.code == 1
    assert result.events[-1].error == (
        "TypeError: agent.policy_bytes() returned str; it must return bytes"
    )
    assert _leftovers(tmp_path) == []
    assert [e.ep_index for e in result.of(ev.Episode)] == [0, 1]


def test_many_periodic_checkpoints_leave_no_file_behind(tmp_path: Path) -> None:
    result = run_worker(make_config(tmp_path, episodes=40, checkpoint_every=2, step_delay=0.0002))
    assert result.code == 0
    assert len(result.of(ev.Artifact)) == 20
    policy = json.loads((tmp_path / POLICY).read_text())
    assert policy["episode"] == 40
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def _small_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))


def test_disk_limit_during_a_checkpoint_keeps_the_old_one_whole(tmp_path: Path) -> None:
    # a real write failure (EFBIG): the 8x8 Q-table's JSON is larger than 300 bytes
    good = tmp_path / POLICY
    env = gym.make("FrozenLake-v1", map_name="8x8")
    QLearningAgent(env.observation_space, env.action_space, seed=0).save(good, episode=0)
    before = good.read_bytes()
    result = run_worker(
        make_config(tmp_path, episodes=3, checkpoint_every=1, env_kwargs={"map_name": "8x8"}),
        preexec=_small_file_limit,
    )
    assert result.code == 1
    assert "File too large" in result.events[-1].error
    assert good.read_bytes() == before  # the previous checkpoint is intact
    assert _leftovers(tmp_path) == []


def test_custom_agent_without_episode_or_restore_is_saved_and_resumed(tmp_path: Path) -> None:
    run_id = new_run_id()
    first = run_worker(make_config(tmp_path, "a.json", run_id=run_id, agent="NoEpisodeSave"))
    assert first.code == 0
    assert (tmp_path / POLICY).read_text() == str(first.events[-1].steps_done)
    again = run_worker(
        make_config(
            tmp_path, "b.json", run_id=run_id, agent="NoEpisodeSave", episodes=4, start_episode=3
        )
    )
    assert again.code == 0, again.stderr.decode()
    assert again.events[0].resumed_from == POLICY  # the file, no episode recorded
    assert again.of(ev.Steps)[0].step_extras()[0]["steps"] == first.events[-1].steps_done + 1


def test_a_checkpoint_the_agent_cannot_load_is_not_claimed_as_resumed(tmp_path: Path) -> None:
    """Regression (worker audit): Started said resumed_from 'policy-000001.json' for an
    agent with save() but no load(), which started afresh."""
    run_id = new_run_id()
    first = run_worker(make_config(tmp_path, "a.json", run_id=run_id, agent="SaveOnly"))
    assert first.code == 0
    assert (tmp_path / POLICY).exists()
    again = run_worker(
        make_config(
            tmp_path, "b.json", run_id=run_id, agent="SaveOnly", episodes=4, start_episode=3
        )
    )
    assert again.code == 0, again.stderr.decode()
    assert again.events[0].resumed_from is None


def test_policy_in_train_mode_never_overrides_the_configured_epsilon(tmp_path: Path) -> None:
    env = gym.make("FrozenLake-v1")
    saved = QLearningAgent(
        env.observation_space, env.action_space, seed=0, epsilon=0.05, epsilon_min=0.05
    )
    saved.q[0] = [0.0, 0.0, 7.0, 0.0]  # a recognisable value
    start = tmp_path / "start.json"
    saved.save(start)
    result = run_worker(
        make_config(
            tmp_path,
            episodes=2,
            policy_path=str(start),
            agent_kwargs={"epsilon": 0.5, "epsilon_min": 0.05, "epsilon_decay": 0.9},
        )
    )
    assert result.code == 0, result.stderr.decode()
    assert result.events[0].resumed_from is None
    assert set(_step_epsilons(result, 0)) == {0.5}  # the configured ε from the first episode
    assert set(_step_epsilons(result, 1)) == {0.45}
    final = json.loads((tmp_path / POLICY).read_text())
    assert final["q"][0][2] <= 7.0
    assert final["q"][0][2] > 1.0  # the loaded 7.0 was the start (a fresh table has 0 there)


def test_restart_prefers_the_checkpoint_over_the_starting_policy(tmp_path: Path) -> None:
    env = gym.make("FrozenLake-v1")
    start = tmp_path / "start.json"
    QLearningAgent(env.observation_space, env.action_space, seed=0).save(start)
    run_id = new_run_id()
    common: dict[str, Any] = {"run_id": run_id, "policy_path": str(start)}
    assert run_worker(make_config(tmp_path, "a.json", episodes=5, **common)).code == 0
    ckpt = json.loads((tmp_path / POLICY).read_text())
    again = run_worker(make_config(tmp_path, "b.json", episodes=6, start_episode=5, **common))
    assert again.events[0].resumed_from == f"{POLICY}@ep5"
    assert set(_step_epsilons(again, 5)) == {ckpt["epsilon"]}


def test_checkpoint_file_mode_ignores_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        assert run_worker(make_config(tmp_path, episodes=1)).code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / POLICY).stat().st_mode) == 0o600


def test_checkpoint_label_reads_only_the_head_of_builtin_files(tmp_path: Path) -> None:
    from nbtrain.agents import TileSarsaAgent
    from nbtrain.worker.checkpoint import checkpoint_label

    lake = gym.make("FrozenLake-v1")
    QLearningAgent(lake.observation_space, lake.action_space).save(tmp_path / "a", episode=320)
    QLearningAgent(lake.observation_space, lake.action_space).save(tmp_path / "b")
    car = gym.make("MountainCar-v0")
    TileSarsaAgent(car.observation_space, car.action_space).save(tmp_path / "c", episode=7)
    (tmp_path / "d").write_text('{"episode": 5, "weights": []}')  # a custom agent's JSON
    (tmp_path / "e").write_bytes(b"\x00\x01not json")
    big = tmp_path / "f"  # a large file whose head is a built-in header: not parsed whole
    big.write_bytes(
        b'{"format":"nbtrain.tabular","version":1,"algorithm":"sarsa","episode":9,' + b" " * 2**21
    )
    labels = [checkpoint_label(tmp_path / n) for n in ("a", "b", "c", "d", "e", "f", "none")]
    assert labels == ["a@ep320", "b", "c@ep7", "d@ep5", "e", "f@ep9", "none"]


def test_a_snapshot_whose_episodes_were_dropped_is_never_written(tmp_path: Path) -> None:
    # Regression (review): 300-step episodes, so a full Steps event is encoded early at the
    # end of episode 4; the agent's bad extras in episode 5 drop that whole batch (episodes
    # 1-4 with it), and the failure path must not then write the snapshot taken after
    # episode 4: it would be ahead of what the kernel received.
    config = make_config(
        tmp_path,
        env_id="worker_agents:NbtSlowCorridor-v0",
        env_kwargs={"delay": 0.0},
        max_steps_per_episode=300,
        agent="BytesBadExtrasLater",
        agent_kwargs={"bad_after": 4},
        episodes=50,
        checkpoint_every=1,
    )
    result = run_worker(config)
    assert result.code == 1
    assert "returned float" in result.events[-1].error
    received = [e.ep_index for e in result.of(ev.Episode)]
    policy = tmp_path / POLICY  # none at all is never ahead either
    written = json.loads(policy.read_text())["episode"] if policy.exists() else 0
    assert written <= len(received)  # never ahead of the episodes the kernel has
    assert received == list(range(len(received)))
    assert _leftovers(tmp_path) == []


def test_an_agent_that_cannot_save_gets_no_periodic_checkpoint(tmp_path: Path) -> None:
    # step_delay: a flush after every step, where a pending snapshot would be written
    config = make_config(
        tmp_path, agent="BytesWithoutSave", episodes=20, checkpoint_every=2, step_delay=0.0002
    )
    result = run_worker(config)
    assert result.code == 0, result.stderr.decode()
    assert result.of(ev.Artifact) == []
    assert not (tmp_path / POLICY).exists()


@pytest.mark.parametrize("agent", ["builtin", "SaveOnly"])
def test_a_periodic_checkpoint_waits_until_the_kernel_says_its_episodes_are_stored(
    tmp_path: Path, agent: str
) -> None:
    # Regression: periodic checkpoints were written once their episodes were *sent*; a
    # kernel that died before committing them left a policy file ahead of the database.
    fields: dict[str, Any] = {"episodes": 1_000_000, "checkpoint_every": 5, "step_delay": 0.0005}
    if agent != "builtin":
        fields["agent"] = agent
    handle = start_worker(make_config(tmp_path, **fields), acknowledge=False)
    try:
        handle.wait_for(lambda e: isinstance(e, ev.Episode) and e.ep_index >= 30, timeout=60)
        time.sleep(0.3)  # several flushes: none may write a checkpoint without a Stored
        assert handle.of(ev.Artifact) == []
        assert not (tmp_path / POLICY).exists()
        handle.acknowledge(12)
        handle.wait_for(lambda e: isinstance(e, ev.Artifact), timeout=30)
        if agent == "builtin":
            assert json.loads((tmp_path / POLICY).read_text())["episode"] <= 12
        time.sleep(0.3)
        assert len(handle.of(ev.Artifact)) == 1  # nothing newer is stored
        handle.send_stop()
    finally:
        result = handle.wait(60)
    assert result.code == 0, result.stderr.decode()
    if agent == "builtin":  # the final save of a stop the kernel asked for covers everything
        episodes = len(result.of(ev.Episode))
        assert json.loads((tmp_path / POLICY).read_text())["episode"] == episodes
    assert _leftovers(tmp_path) == []
