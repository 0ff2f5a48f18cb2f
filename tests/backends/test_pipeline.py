"""The pipeline and fault tests, run against both backends: real workers (subprocesses, or
Ray actors on the session's local instance), real pipes and a real SQLite file."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nbtrain
from tests.backends.hosts import not_hosted
from tests.kit.backends import Launch, config, slow, worker_rows
from tests.kit.processes import wait_for, wait_gone
from tests.kit.truth import no_live_rows, whole_episodes

pytestmark = pytest.mark.slow

EPISODES = 15


def test_exact_rows_per_worker(launch: Launch, db: Path, backend: str) -> None:
    run = launch(
        config(agent="backend_agents:WhereAmI", episodes=EPISODES, workers=[3, "gpu_a"]),
        db=db,
        backend=backend,
    )
    assert run.wait(timeout=120) == {"000003": "completed", "gpu_a": "completed"}
    episodes = run.episodes()
    assert episodes.groupby("worker_id", observed=True).size().to_dict() == {
        "000003": EPISODES,
        "gpu_a": EPISODES,
    }
    for wid in ("000003", "gpu_a"):
        assert run.episodes(worker_id=wid)["ep_index"].tolist() == list(range(EPISODES))
    with sqlite3.connect(db) as con:
        (steps,) = con.execute(
            "SELECT COUNT(*) FROM steps WHERE run_id=?", (run.run_id,)
        ).fetchone()
        seen = dict(
            con.execute(
                "SELECT worker_id, group_concat(DISTINCT json_extract(extras, '$.env_worker_id')) "
                "FROM steps WHERE run_id=? GROUP BY worker_id",
                (run.run_id,),
            ).fetchall()
        )
    assert steps == int(episodes["length"].sum())
    assert seen == {"000003": "000003", "gpu_a": "gpu_a"}, "WORKER_ID in each worker's env"
    rows = worker_rows(db, run.run_id)
    run_dir = db.parent / "nbtrain-runs" / run.run_id
    for wid, row in rows.items():
        assert row.get("backend", backend) == backend
        assert row["exit_code"] == 0
        assert isinstance(row["pid"], int)
        record = json.loads((run_dir / f"worker-{run.run_id}-{wid}.json").read_text())
        assert record["worker_id"] == wid


def test_stop_a_long_run(
    launch: Launch, db: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    run = launch(slow(), db=db, backend=backend)
    wait_for(lambda: len(run.steps()) > 20)
    wait_for(lambda: all(r["pid"] for r in worker_rows(db, run.run_id).values()))
    pids = [r["pid"] for r in worker_rows(db, run.run_id).values()]
    assert run.stop(timeout=10) == {"000001": "stopped", "000002": "stopped"}
    rows = worker_rows(db, run.run_id)
    assert {w: r["status"] for w, r in rows.items()} == {"000001": "stopped", "000002": "stopped"}
    assert run.run_status == "stopped"
    whole_episodes(db, run.run_id)
    no_live_rows(db, run.run_id)
    if backend == "ray":
        # The actors ended their workers; they are kept warm for the next ones.
        ray = request.getfixturevalue("ray_cluster")
        assert all(not_hosted(ray, run.run_id, wid) for wid in rows)
    else:
        for pid in pids:
            assert wait_gone(pid, 5)


def test_raising_agent_fails_with_its_traceback(launch: Launch, db: Path, backend: str) -> None:
    run = launch(
        config(
            env_id="CliffWalking-v1",
            env_kwargs={},
            agent="pipeline_agents:Raises",
            agent_kwargs={"fail_at": 30},
            workers=1,
        ),
        db=db,
        backend=backend,
    )
    assert run.wait(timeout=60) == {"000001": "failed"}
    row = run.store.workers(run.run_id).iloc[0]
    assert "agent exploded on purpose" in row["error"]
    assert "Traceback" in row["traceback"]
    assert row["exit_code"] not in (0, None)
    assert len(run.steps()) == 0, "steps of the unfinished episode must not stay"
    no_live_rows(db, run.run_id)


def test_notebook_agent_class_travels_by_value(launch: Launch, db: Path, backend: str) -> None:
    class NotebookAgent:  # defined here, so no worker can import it: it is pickled
        def __init__(self, observation_space: Any, action_space: Any, seed: int = 0) -> None:
            self.action_space = action_space
            self.action_space.seed(seed)

        def act(self, obs: Any, explore: bool = True) -> Any:
            return self.action_space.sample()

        def learn(self, *args: Any) -> dict[str, Any]:
            return {"from_notebook": 1}

    cfg = config(agent=NotebookAgent, episodes=4, workers=2)
    assert cfg.worker_configs(run_id=nbtrain.new_run_id(), run_dir=".")[0].agent.kind == "pickle"
    run = launch(cfg, db=db, backend=backend)
    assert run.wait(timeout=120) == {"000001": "completed", "000002": "completed"}
    steps = run.steps()
    assert len(steps) > 0
    assert all(json.loads(e) == {"from_notebook": 1} for e in steps["extras"].astype(str))


def test_restart_continues_the_episode_counter(launch: Launch, db: Path, backend: str) -> None:
    run = launch(slow(episodes=30, workers=1), db=db, backend=backend)
    wait_for(lambda: len(run.episodes()) >= 3)
    run.stop()
    done = len(run.episodes())
    assert run.status() == {"000001": "stopped"}
    run.restart("w1")
    assert run.wait(timeout=120) == {"000001": "completed"}
    episodes = run.episodes()
    assert episodes["ep_index"].tolist() == list(range(30))
    assert done < 30
    assert episodes["episode_id"].is_unique
    assert whole_episodes(db, run.run_id) == 30


def test_chatty_worker_output_is_relayed(launch: Launch, db: Path, backend: str) -> None:
    run = launch(
        config(agent="pipeline_agents:Chatty", episodes=20, workers=1), db=db, backend=backend
    )
    assert run.wait(timeout=120) == {"000001": "completed"}
    assert len(run.episodes()) == 20
    output = run.store.workers(run.run_id).iloc[0]["output"]
    assert "xxxx" in output
    assert "eeee" in output


def test_actor_killed_from_outside_fails_with_rays_reason(
    launch: Launch, db: Path, ray_cluster: Any
) -> None:
    from nbtrain.dispatch.ray_backend import find_host

    ray = ray_cluster
    run = launch(slow(episodes=40), db=db, backend="ray")
    wait_for(lambda: bool(worker_rows(db, run.run_id).get("000001", {}).get("pid")))
    wait_for(lambda: len(run.episodes(worker_id=1)) >= 2)
    victim_pid = worker_rows(db, run.run_id)["000001"]["pid"]
    ray.kill(find_host(ray, run.run_id, "000001"))
    assert run.wait(timeout=120) == {"000001": "failed", "000002": "completed"}
    row = worker_rows(db, run.run_id)["000001"]
    assert "Ray actor" in row["error"]
    assert "ray.kill" in row["error"], row["error"]
    assert row["exit_code"] == -signal.SIGKILL
    assert wait_gone(victim_pid, 10), "the worker ran in the actor's process: gone with it"
    assert len(run.episodes(worker_id=2)) == 40
    last = run.episodes(worker_id=1)["ep_index"].max()
    assert run.steps(worker_id=1)["ep_index"].max() <= last
    assert whole_episodes(db, run.run_id) == 40 + last + 1
    no_live_rows(db, run.run_id)


def test_a_worker_no_node_can_host_fails_the_launch(
    launch: Launch, db: Path, ray_cluster: Any
) -> None:
    from nbtrain.dispatch.ray_backend import RayBackend

    with pytest.raises(nbtrain.RunError, match="no Ray node can host") as info:
        launch(config(workers=1), db=db, backend=RayBackend(num_cpus=64))
    run_id = str(info.value).split()[1]
    assert nbtrain.Run.open(run_id, db=db).status() == {"000001": "failed"}


def episode_count(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT COUNT(*) FROM episodes").fetchone()[0])


def test_stop_from_another_process(launch: Launch, db: Path, backend: str) -> None:
    run = launch(slow(workers=2), db=db, backend=backend)
    # (Not run.steps(): after it, another process's write here fails; reported.)
    wait_for(lambda: episode_count(db) >= 2)
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, nbtrain; "
            "print(nbtrain.Run.open(sys.argv[1], db=sys.argv[2]).stop('000002', timeout=20))",
            run.run_id,
            str(db),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert other.returncode == 0, other.stderr
    assert "'000002': 'stopped'" in other.stdout
    assert run.status()["000002"] == "stopped"
    assert run.status()["000001"] == "running"
    assert run.stop() == {"000001": "stopped", "000002": "stopped"}
