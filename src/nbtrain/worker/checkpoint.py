"""Where a worker's agent starts from, and how its checkpoints are written.

Three different things, kept apart on purpose:

- ``policy_path`` in train mode is a *starting policy*: only its values are loaded
  (``agent.load``); the configured ε schedule applies from the first episode.
- A *checkpoint* (``policy-{worker_id}.json`` in the run folder, every ``checkpoint_every``
  episodes and at the end) holds the agent's whole learning state. A training worker
  restarted after a crash (``start_episode > 0``) resumes from it with ``agent.restore``
  (values *and* ε), falling back to ``load`` for agents without ``restore``.
- In eval mode the worker plays ``policy_path`` (or its own saved policy) greedily.

A checkpoint is written atomically: the agent saves into a fresh ``0600`` temp file beside
the target, which is fsynced and renamed over it; any failure removes the temp file and is
raised (a run must not go on believing it has a checkpoint it does not have). Periodic
checkpoints of an agent with ``policy_bytes()`` (the built-in ones) are cheaper: no fsync,
and the bytes swap places with the target through one reused file
(:class:`~nbtrain.agents.atomic.SwapWriter`): about 20 us instead of about 1 ms, which was
a sixth of a FrozenLake run's time at the default ``checkpoint_every=100``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbtrain.agents.atomic import (
    FILE_MODE,
    SwapWriter,
    replace_atomically,
    saving_into,
    temp_path,
    without_fsync,
)
from nbtrain.worker.config_file import WorkerConfig
from nbtrain.worker.control import StoredMark

__all__ = [
    "Checkpointer",
    "Saver",
    "checkpoint_label",
    "remove_stale_temps",
    "resume_point",
    "save_atomically",
    "save_to_temp",
    "saver",
    "start_agent",
]

Saver = Callable[[str, int], None]

_HEAD = 512
_SMALL = 1 << 20
# what the built-in agents' save() writes first (nbtrain.agents.policyfile)
_BUILTIN_HEAD = re.compile(
    rb'\{"format":"nbtrain\.[a-z_]+","version":\d+,"algorithm":"[a-z_]+","episode":(\d+|null)'
)


def saver(agent: Any) -> Saver | None:
    """``save(path, episode)`` for ``agent``: passes ``episode=`` when its ``save`` takes it."""
    save = getattr(agent, "save", None)
    if not callable(save):
        return None
    if _takes_episode(save):
        return lambda path, episode: save(path, episode=episode)
    return lambda path, episode: save(path)


def _takes_episode(save: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(save).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "episode" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def save_atomically(save: Saver, target: Path, episode: int) -> None:
    """Let the agent write ``target`` via a temp file, so ``target`` is whole or untouched."""
    replace_atomically(save_to_temp(save, target, episode), target)


def save_to_temp(save: Saver, target: Path, episode: int) -> Path:
    """The agent's save into a new ``0600`` temp file beside ``target`` (removed if it
    fails), to be renamed over ``target`` now or once its episodes are stored."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = temp_path(target)
    try:
        with saving_into(tmp):
            save(str(tmp), episode)
        if not tmp.exists():
            raise FileNotFoundError(
                f"the agent's save({str(tmp)!r}) wrote nothing there; save(path) must write "
                "the file it is given"
            )
        os.chmod(tmp, FILE_MODE)  # an agent's own writer may have used the umask
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


class Checkpointer:
    """How one worker saves its agent to ``target``: durably at the end, cheaply between.

    A periodic checkpoint is taken in two steps: the agent's state at the episode boundary
    (:meth:`snapshot`: its ``policy_bytes()``, else its ``save`` into a temp file), and the
    file once the episodes up to that boundary are safe (:meth:`write_pending`, called after
    each telemetry flush). Safe means *stored* when the kernel acknowledges (``gate``, the
    ``Stored`` frames of a local worker): a kernel that dies with episodes still unwritten
    never leaves a checkpoint ahead of the database. Without acknowledgements (Ray, a worker
    run by hand) it means *sent*, and an agent without ``policy_bytes`` is saved at the
    boundary after a flush. A fast run writes one file per flush (about 10 a second)
    instead of one per boundary: that was 4 % of a FrozenLake run at ``checkpoint_every=100``
    (``benchmarks/vs_bare.py``). Ungated, a newer snapshot replaces an unwritten one; gated,
    the older one is kept until it is written (acknowledgements lag the newest boundary).
    """

    def __init__(self, agent: Any, target: Path, *, gate: StoredMark | None = None) -> None:
        self.target = target
        self._save = saver(agent)
        dump = getattr(agent, "policy_bytes", None)
        self._dump: Callable[..., bytes] | None = dump if callable(dump) else None
        self._swap: SwapWriter | None = None
        self._pending: tuple[int, bytes | Path] | None = None
        self._gate = gate

    @property
    def can_save(self) -> bool:
        return self._save is not None

    @property
    def pending(self) -> bool:
        return self._pending is not None

    @property
    def pending_episode(self) -> int | None:
        return None if self._pending is None else self._pending[0]

    @property
    def waiting(self) -> bool:
        """A snapshot waits for its episodes to be stored: take no newer one meanwhile."""
        return self._gate is not None and self._pending is not None

    def snapshot(self, episode: int) -> bool:
        """Take the agent's state after ``episode`` episodes, to write after a flush; False
        if it must be saved now instead (:meth:`save`, after a flush)."""
        if self._save is None:
            return False
        if self._dump is not None:
            self._set_pending((episode, self._bytes(episode)))
            return True
        if self._gate is None:
            return False
        self._set_pending((episode, save_to_temp(self._save, self.target, episode)))
        return True

    def write_pending(self) -> int | None:
        """Write the pending snapshot if its episodes are safe; returns its episode."""
        if self._pending is None:
            return None
        episode, data = self._pending
        if self._gate is not None and episode > self._gate.episodes:
            return None  # not stored yet: a later flush writes it
        self._pending = None
        if isinstance(data, Path):
            with without_fsync():
                replace_atomically(data, self.target)
            return episode
        if self._swap is None:
            self.target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._swap = SwapWriter(self.target)
        self._swap.write(data)
        return episode

    def discard(self) -> None:
        """Forget the pending snapshot: the telemetry it follows was not sent."""
        self._set_pending(None)

    def _set_pending(self, pending: tuple[int, bytes | Path] | None) -> None:
        if self._pending is not None and isinstance(self._pending[1], Path):
            with contextlib.suppress(OSError):
                self._pending[1].unlink()
        self._pending = pending

    def save(self, episode: int, *, final: bool) -> bool:
        """Save after ``episode`` episodes now; False if the agent cannot save."""
        if self._save is None:
            return False
        if final:
            self._set_pending(None)
            self.close()
            save_atomically(self._save, self.target, episode)
        else:  # periodic, for an agent without policy_bytes (the others take snapshot())
            with without_fsync():
                save_atomically(self._save, self.target, episode)
        return True

    def _bytes(self, episode: int) -> bytes:
        assert self._dump is not None
        data = self._dump(episode=episode)
        if not isinstance(data, bytes):
            raise TypeError(
                f"agent.policy_bytes() returned {type(data).__name__}; it must return bytes"
            )
        return data

    def close(self) -> None:
        """Remove the swap file of periodic checkpoints and an unwritten snapshot's temp
        file (the target stays)."""
        self._set_pending(None)
        if self._swap is not None:
            self._swap.close()
            self._swap = None


def remove_stale_temps(target: Path) -> None:
    """Temp files a killed predecessor left mid-save (SIGKILL cannot be cleaned up after)."""
    with contextlib.suppress(OSError):
        # ".policy-000001.json.PID.N.tmp" and the agent's own temp inside it (one more dot);
        # worker ids contain no "-", so no other worker's file has this name in it
        for stale in target.parent.glob(f".*{target.name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()


def resume_point(cfg: WorkerConfig, checkpoint: Path) -> Path | None:
    """The checkpoint a restarted training worker resumes from, if there is one."""
    if cfg.mode == "train" and cfg.start_episode > 0 and checkpoint.is_file():
        return checkpoint
    return None


def checkpoint_label(path: Path) -> str:
    """``"policy-000001.json@ep320"``: the file and the episode count it was taken after
    (only the file name when the agent's format does not record it).

    Read before the agent is made, to report it in ``Started``: a built-in agent's file
    names the episode in its first bytes, so a large table is not parsed twice.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(_HEAD)
            rest = fh.read(_SMALL)
    except OSError:
        return path.name
    match = _BUILTIN_HEAD.match(head)
    if match is not None:
        episode: object = int(match.group(1)) if match.group(1) != b"null" else None
    elif len(rest) < _SMALL:  # a small file in another format: it may be JSON with "episode"
        try:
            data = json.loads(head + rest)
        except ValueError:
            return path.name
        episode = data.get("episode") if isinstance(data, dict) else None
    else:
        return path.name
    if isinstance(episode, int) and not isinstance(episode, bool):
        return f"{path.name}@ep{episode}"
    return path.name


def start_agent(
    agent: Any, cfg: WorkerConfig, policy_path: Path | None, own: Path, out: Path | None = None
) -> Path | None:
    """Load what the agent starts from (see the module docstring); return the checkpoint it
    resumed from, if it did (an agent without ``load`` cannot: it starts afresh). Raises
    when eval mode has nothing to play or a policy is given to an agent that cannot load
    one. ``own``: the worker's recorded policy file; ``out``: where it will save (default
    ``own``), whose stale temp files a training worker removes."""
    if cfg.mode == "train":
        remove_stale_temps(out or own)
    load = getattr(agent, "load", None)
    resume = resume_point(cfg, own)
    if resume is not None and load is not None:
        restore = getattr(agent, "restore", None)
        (restore if callable(restore) else load)(str(resume))
        return resume
    if policy_path is not None:
        if not policy_path.exists():
            raise FileNotFoundError(f"policy_path {str(policy_path)!r} does not exist")
        if load is None:
            raise TypeError(
                f"policy_path is set but agent {type(agent).__name__} has no load(path)"
            )
        load(str(policy_path))
        return None
    if cfg.mode != "eval" or load is None:
        return None
    if not own.exists():
        raise FileNotFoundError(
            f"eval mode needs a trained policy: policy_path is not set and "
            f"{str(own)!r} does not exist"
        )
    load(str(own))
    return None
