"""The telemetry events: the one schema shared by the worker, the kernel, the store and the
dashboard. Documented for other tools in ``docs/wire.md``.

Every event carries ``run_id`` and ``worker_id``. Times are Unix seconds (float, UTC).
Step and episode events travel in column batches (:class:`Steps`, :class:`Episodes`): one
list per field, all the same length, so the worker pays one tuple append per step or
episode, and the kernel decodes one object per batch instead of one per row.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from nbtrain.ids import format_episode_id

# 2: finished episodes travel in column batches (``episodes``); 1 sent one ``episode`` each.
# 3: Steps.extras_columns. 4: StepRows. 5: Episodes.extras_columns. 6: the Stored control frame.
WIRE_VERSION = 6

WorkerStatus = Literal["pending", "running", "completed", "failed", "stopped"]
EndStatus = Literal["completed", "failed", "stopped"]


class _Event(msgspec.Struct, tag_field="type", frozen=True, forbid_unknown_fields=True):
    run_id: str
    worker_id: str


def extras_epsilon(extras: object) -> float | None:
    """The agent's ε in an extras dict (``{"epsilon": 0.42, ...}``), if it names a number."""
    if isinstance(extras, dict):
        value = extras.get("epsilon")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


class Started(_Event, tag="started", frozen=True, kw_only=True):
    pid: int
    ts: float
    digest: str
    env_id: str
    agent: str
    mode: Literal["train", "eval"]
    episodes: int
    start_episode: int
    wire_version: int = WIRE_VERSION
    # A training worker restarted after a crash: the checkpoint it resumed learning from,
    # "policy-000001.json@ep320" (taken after 320 episodes); None when it started fresh.
    resumed_from: str | None = None


class Steps(_Event, tag="steps", frozen=True, kw_only=True):
    """A batch of steps, column by column (all lists have the same length).

    ``action`` and ``obs`` hold ints for discrete spaces and (nested) lists of numbers for
    array spaces; ``extras`` holds the agent's per-step dict (or None).

    ``extras_columns`` is the other way to send extras, when every step has the same keys
    (the built-in tabular agents' ε and TD error): ``extras`` is then empty and step i's
    dict is ``{key: column[i] for key, column in extras_columns.items()}``. No map per step
    on the wire, and no dict per step when the kernel decodes it.
    """

    ep_index: list[int]
    step_index: list[int]
    action: list[Any]
    reward: list[float]
    terminated: list[bool]
    truncated: list[bool]
    obs: list[Any]
    extras: list[dict[str, Any] | None]
    ts: list[float]
    extras_columns: dict[str, list[Any]] | None = None

    def __len__(self) -> int:
        return len(self.step_index)

    def check_extras_columns(self) -> None:
        """Raise ``ValueError`` unless each extras column has one value per step."""
        _check_columns(self.extras_columns, len(self), "steps")

    def step_extras(self) -> list[dict[str, Any] | None]:
        """Each step's extras dict, from ``extras`` or from ``extras_columns`` (checked with
        :meth:`check_extras_columns`)."""
        columns = self.extras_columns
        if columns is None:
            return self.extras
        self.check_extras_columns()
        return [*_dicts(columns, len(self))]


def _check_columns(columns: dict[str, list[Any]] | None, n: int, what: str) -> None:
    for key, values in (columns or {}).items():
        if len(values) != n:
            raise ValueError(f"extras column {key!r} has {len(values)} values for {n} {what}")


def _dicts(columns: dict[str, list[Any]], n: int) -> list[dict[str, Any]]:
    """Row i of ``columns`` (each of length ``n``) as a dict, for every i."""
    if not columns:
        return [{} for _ in range(n)]
    keys = list(columns)
    return [dict(zip(keys, values, strict=True)) for values in zip(*columns.values(), strict=True)]


TdRow = tuple[int, int, Any, float, bool, bool, Any, float, float, float]
"""``(ep_index, step_index, action, reward, terminated, truncated, obs, epsilon, td_error,
ts)``: a step of a built-in tabular agent's training episode, its extras as two fields."""
TD_EXTRAS = ("epsilon", "td_error")
"""The keys of a :data:`TdRow`'s two extras fields, in order."""


class StepRows(_Event, tag="step_rows", frozen=True, kw_only=True):
    """A batch of a built-in tabular agent's steps, row by row (wire version 4).

    The worker appends one tuple per step; sending the tuples as they are spares it
    transposing them into :class:`Steps` columns (~75 ns a step, 1 % of a FrozenLake run).
    msgspec checks every field's type as it decodes; the kernel then turns the batch into
    :class:`Steps` (:meth:`to_steps`), which is what the rest of it knows.
    """

    rows: list[TdRow]

    def __len__(self) -> int:
        return len(self.rows)

    def to_steps(self) -> Steps:
        """The same steps as columns, the extras as ``extras_columns``."""
        if self.rows:
            ep, step, action, reward, term, trunc, obs, eps, td, ts = map(
                list, zip(*self.rows, strict=True)
            )
        else:
            ep, step, action, reward, term, trunc, obs, eps, td, ts = ([] for _ in range(10))
        return Steps(
            run_id=self.run_id,
            worker_id=self.worker_id,
            ep_index=ep,
            step_index=step,
            action=action,
            reward=reward,
            terminated=term,
            truncated=trunc,
            obs=obs,
            extras=[],
            ts=ts,
            extras_columns=dict(zip(TD_EXTRAS, (eps, td), strict=True)),
        )


class Episode(_Event, tag="episode", frozen=True, kw_only=True):
    ep_index: int
    episode_id: str
    total_reward: float
    length: int
    terminated: bool
    truncated: bool
    seed: int
    started_at: float
    ended_at: float
    # From the agent's end_episode(), e.g. {"epsilon": 0.42}.
    extras: dict[str, Any] = {}


class Episodes(_Event, tag="episodes", frozen=True, kw_only=True):
    """Finished episodes as columns, as a flush sends them. ``episode_id`` is not sent: it
    follows from the ids (:meth:`expand` spells it out)."""

    ep_index: list[int]
    total_reward: list[float]
    length: list[int]
    terminated: list[bool]
    truncated: list[bool]
    seed: list[int]
    started_at: list[float]
    ended_at: list[float]
    extras: list[dict[str, Any]]
    # As in Steps: the extras as columns when every episode has the same keys (a built-in
    # tabular agent's ε), ``extras`` then empty. No dict per episode for the worker to make
    # and hold until its flush, nor for the kernel to decode.
    extras_columns: dict[str, list[Any]] | None = None

    def __len__(self) -> int:
        return len(self.ep_index)

    def check_columns(self) -> None:
        """Raise ``ValueError`` unless every column, the extras included, has one value per
        episode."""
        n = len(self)
        # the columns between worker_id and the two extras fields
        lengths = {len(column) for column in msgspec.structs.astuple(self)[2:-2]}
        extras = self.extras
        if self.extras_columns is not None:
            if extras:
                raise ValueError("Episodes has both extras and extras_columns")
            _check_columns(self.extras_columns, n, "episodes")
        else:
            lengths.add(len(extras))
        if lengths - {n}:
            raise ValueError(f"Episodes columns have different lengths {sorted(lengths | {n})}")

    def episode_extras(self) -> list[dict[str, Any]]:
        """Each episode's extras dict, from ``extras`` or from ``extras_columns`` (checked
        with :meth:`check_columns`)."""
        columns = self.extras_columns
        if columns is None:
            return self.extras
        self.check_columns()
        return _dicts(columns, len(self))

    def last_extras(self) -> dict[str, Any] | None:
        """The last episode's extras dict (None for an empty batch), without making the
        others."""
        columns = self.extras_columns
        if columns is None:
            return self.extras[-1] if self.extras else None
        if not self.ep_index:
            return None
        return {key: values[-1] for key, values in columns.items() if values}

    def episode_ids(self, start: int = 0) -> list[str]:
        """The ids of the episodes from row ``start`` on."""
        prefix = format_episode_id(self.run_id, 0, self.worker_id)[: -len("000000")]
        return [f"{prefix}{ep:06d}" for ep in self.ep_index[start:]]

    def expand(self, start: int = 0) -> list[Episode]:
        """One :class:`Episode` per row from row ``start`` on; ``ValueError`` if the
        columns differ in length."""
        run_id, worker_id = self.run_id, self.worker_id
        columns = (
            self.episode_ids(),
            self.ep_index,
            self.total_reward,
            self.length,
            self.terminated,
            self.truncated,
            self.seed,
            self.started_at,
            self.ended_at,
            self.episode_extras(),
        )
        return [
            Episode(
                run_id=run_id,
                worker_id=worker_id,
                episode_id=eid,
                ep_index=ep,
                total_reward=reward,
                length=length,
                terminated=term,
                truncated=trunc,
                seed=seed,
                started_at=t0,
                ended_at=t1,
                extras=extras,
            )
            for eid, ep, reward, length, term, trunc, seed, t0, t1, extras in zip(
                *(column[start:] for column in columns), strict=True
            )
        ]


class Progress(_Event, tag="progress", frozen=True, kw_only=True):
    """Heartbeat, at least once a second while the worker lives."""

    ts: float
    episodes_done: int
    steps_done: int
    steps_per_s: float
    ep_index: int
    epsilon: float | None = None


class GridMap(_Event, tag="grid", frozen=True, kw_only=True):
    """Sent once per episode for toy-text grid worlds so a front-end can draw the grid;
    the agent's position is then the step's observation (Taxi: its encoded state)."""

    ep_index: int
    kind: Literal["frozenlake", "cliffwalking", "taxi"]
    rows: list[str]


class Frame(_Event, tag="frame", frozen=True, kw_only=True):
    """The environment as it plays, every ``frame_every`` steps when frames are on.

    ``ansi``: ``text``. ``rgb_array``: ``data`` is raw uint8 RGB, ``shape`` [h, w, 3].
    ``grid``: ``position`` is the observation for a :class:`GridMap` grid.
    """

    ep_index: int
    step_index: int
    kind: Literal["ansi", "rgb_array", "grid"]
    text: str | None = None
    data: bytes | None = None
    shape: list[int] | None = None
    position: int | None = None


class Artifact(_Event, tag="artifact", frozen=True, kw_only=True):
    kind: Literal["policy"]
    path: str
    ts: float


class Ended(_Event, tag="ended", frozen=True, kw_only=True):
    """Last event of a worker. ``failed`` carries the error line and the traceback."""

    status: EndStatus
    ts: float
    episodes_done: int
    steps_done: int
    error: str | None = None
    traceback: str | None = None


Event = (
    Started | Steps | StepRows | Episode | Episodes | Progress | GridMap | Frame | Artifact | Ended
)


class Stop(msgspec.Struct, tag_field="type", tag="stop", frozen=True, forbid_unknown_fields=True):
    """Kernel → worker on the control pipe: finish the current step, flush, exit ``stopped``."""


class Stored(
    msgspec.Struct, tag_field="type", tag="stored", frozen=True, forbid_unknown_fields=True
):
    """Kernel → worker: its episodes before ``episodes`` (an ``ep_index``) are committed to
    the database. A checkpoint is written only once the episodes it follows are, so a
    kernel that dies never leaves a policy file ahead of the stored episodes."""

    episodes: int


Control = Stop | Stored
