"""A stand-in for a notebook kernel, run as its own process by the lifecycle tests.

``python kernel_proc.py DB EPISODES WORKERS STEP_DELAY [NOFILE]`` launches a run (agent
``$KERNEL_AGENT``, default Q-learning; ``notebook`` for a class of ``__main__``; checkpoints
every ``$KERNEL_CHECKPOINT_EVERY`` episodes if set), prints
``RUN <run_id>`` (or ``ERROR <type> <message>``) and then waits for the run, printing
``DONE <statuses>`` or ``WAIT-ERROR <type> <message>``. The test kills it when it wants the
kernel dead.
"""

from __future__ import annotations

import json
import os
import resource
import sys


class Sleepy:
    """Always moves right, a little slowly (a run that lasts until it is killed)."""

    def __init__(self, observation_space: object, action_space: object, **kw: object) -> None:
        self.steps = 0

    def act(self, obs: object, explore: bool = True) -> int:
        import time

        time.sleep(0.002)
        return 2

    def learn(self, *args: object) -> None:
        return None


def main() -> None:
    db, episodes, workers, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    nofile = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    import nbtrain

    # e.g. "pipeline_agents:Slow" (on PYTHONPATH), or "notebook": Sleepy below, a class of
    # __main__ (as one defined in a notebook cell), which travels by value
    agent: object = os.environ.get("KERNEL_AGENT")
    if agent == "notebook":
        agent = Sleepy
    config = nbtrain.TrainConfig(
        env_id="FrozenLake-v1",
        env_kwargs={"is_slippery": False},
        episodes=episodes,
        workers=workers,
        step_delay=float(delay),
        **({"agent": agent} if agent else {}),
        **(
            {"checkpoint_every": int(os.environ["KERNEL_CHECKPOINT_EVERY"])}
            if os.environ.get("KERNEL_CHECKPOINT_EVERY")
            else {}
        ),
    )
    if nofile:
        # Few file descriptors left: some worker cannot get its pipes.
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    fsize = int(os.environ.get("KERNEL_FSIZE", "0"))
    if fsize:
        # Files this process writes cannot grow past ``fsize`` bytes: a full disk, for it.
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    try:
        run = nbtrain.launch(config, db=db)
    except Exception as exc:
        print("ERROR", type(exc).__name__, " ".join(str(exc).split()), flush=True)
        return
    print("RUN", run.run_id, flush=True)
    try:
        statuses = run.wait(timeout=float(os.environ.get("KERNEL_WAIT", "600")))
    except Exception as exc:
        print("WAIT-ERROR", type(exc).__name__, " ".join(str(exc).split()), flush=True)
        return
    print("DONE", json.dumps(statuses), flush=True)


if __name__ == "__main__":
    main()
