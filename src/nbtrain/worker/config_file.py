"""The resolved per-worker config: the JSON file the dispatcher writes and the worker reads.

This is a msgspec struct rather than the pydantic ``TrainConfig`` so the worker starts fast;
``TrainConfig.worker_configs()`` produces these, fully resolved (seed, merged agent kwargs,
normalized worker id), and nothing in them needs the kernel to interpret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec

FORMAT_VERSION = 1


class AgentRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the worker finds its agent factory.

    ``builtin``: ``name`` is one of the built-in agents (``"q_learning"``…).
    ``import``: ``name`` is ``"pkg.mod:factory"``, imported in the worker.
    ``pickle``: ``payload`` is base64 cloudpickle of a notebook-defined class/callable;
    ``name`` is its qualified name and ``source_sha256`` the hash of its source (digest input).
    """

    kind: Literal["builtin", "import", "pickle"]
    name: str
    source_sha256: str | None = None
    payload: str | None = None


class TelemetrySpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``steps``: ``"all"``, ``"none"`` or every n-th step; frames every ``frame_every`` steps."""

    steps: Literal["all", "none"] | int = "all"
    frames: Literal["none", "ansi", "rgb_array"] = "none"
    frame_every: int = 1


class WorkerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    format: int = FORMAT_VERSION
    run_id: str
    worker_id: str
    digest: str = ""
    name: str = ""
    env_id: str
    env_kwargs: dict[str, Any] = {}
    agent: AgentRef
    agent_kwargs: dict[str, Any] = {}
    episodes: int
    # resolved by the kernel: explicit, else the env's registered limit, else 1000
    max_steps_per_episode: int = 1000
    seed: int
    step_delay: float = 0.0
    telemetry: TelemetrySpec = TelemetrySpec()
    mode: Literal["train", "eval"] = "train"
    policy_path: str | None = None
    # Where artifacts (policy-{worker_id}.json…) go; None: the config file's folder.
    run_dir: str | None = None
    # First episode index: a restarted worker continues its run's episode counter, and
    # (training) resumes learning from its checkpoint policy-{worker_id}.json in run_dir.
    start_episode: int = 0
    # Save the agent to run_dir/policy-{worker_id}.json every this many episodes (and at
    # the end); None: only at the end.
    checkpoint_every: int | None = 100


def load_worker_config(path: str | Path) -> WorkerConfig:
    """Read and validate a worker config file; raises ``msgspec.ValidationError`` /
    ``msgspec.DecodeError`` / ``OSError`` with the problem named."""
    return msgspec.json.decode(Path(path).read_bytes(), type=WorkerConfig)
