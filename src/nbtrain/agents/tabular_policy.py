"""The tabular agents' policy files: what ``save`` writes and ``load``/``restore`` accept.

Kept apart from :mod:`nbtrain.agents.tabular`, whose agents act and learn at every step,
because reading and writing a Q-table is a concern of its own that runs once per checkpoint
or resume: the JSON layout (format, version, algorithm, episode, shape, observation
discretization, ε, hyperparameters, table) and the checks that a file fits the agent loading
it (its algorithm, the table's shape, the discretization, the first action). The agents get
these methods from :class:`TabularPolicyFile`; the file format itself is in
:mod:`nbtrain.agents.policyfile`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar

from nbtrain.agents.atomic import write_atomic
from nbtrain.agents.discretize import Discretizer
from nbtrain.agents.policyfile import (
    TABULAR_FORMAT,
    VERSION,
    policy_json,
    read_policy,
    resume_point,
    tabular_algorithm,
)

__all__ = ["TabularPolicyFile"]


class TabularPolicyFile:
    """Saving and loading a tabular agent's Q-table (its attributes are set by the agent)."""

    algorithm: ClassVar[str]
    alpha: float
    gamma: float
    epsilon: float
    epsilon_min: float
    epsilon_decay: float
    discretizer: Discretizer
    n_states: int
    n_actions: int
    action_start: int
    q: list[list[float]]

    if TYPE_CHECKING:

        def _forget(self) -> None: ...  # the agent's: drops its cached observation

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "gamma": self.gamma,
            "epsilon_min": self.epsilon_min,
            "epsilon_decay": self.epsilon_decay,
        }

    def save(self, path: str | os.PathLike[str], *, episode: int | None = None) -> None:
        """Write the policy and its learning state as JSON, atomically and ``0600``.

        ``episode``: how many episodes the worker had finished (recorded for a resume).
        """
        write_atomic(path, self.policy_bytes(episode=episode))

    def policy_bytes(self, *, episode: int | None = None) -> bytes:
        """What :meth:`save` writes; the worker's periodic checkpoints write these bytes
        into a file of their own (no new file per checkpoint, see ``worker.checkpoint``)."""
        return policy_json(
            {
                "format": TABULAR_FORMAT,
                "version": VERSION,
                "algorithm": self.algorithm,
                "episode": episode,
                "n_states": self.n_states,
                "n_actions": self.n_actions,
                "action_start": self.action_start,
                "observation": self.discretizer.config,
                "epsilon": self.epsilon,
                "hyperparameters": self.hyperparameters(),
                "q": self.q,
            }
        )

    def load(self, path: str | os.PathLike[str]) -> None:
        """Load the Q-table saved by any tabular agent (a Q-table is a Q-table).

        Only the table: ε and the other hyperparameters stay the ones this agent was made
        with, so a training run's configured schedule applies from its first episode. The
        table's shape and observation discretization must match this agent's.
        """
        self._read(path)

    def restore(self, path: str | os.PathLike[str]) -> int | None:
        """Load the table *and* ε (the whole learning state), to resume after a crash;
        returns the episode count recorded by :meth:`save` (None if none was)."""
        self.epsilon, episode = resume_point(self._read(path), self.epsilon)
        return episode

    def _read(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        data = read_policy(path, TABULAR_FORMAT)
        tabular_algorithm(data, path)
        table = data.get("q")
        shape = _shape(table)
        want = (self.n_states, self.n_actions)
        if shape != want:
            raise ValueError(
                f"policy file {str(path)!r} has a Q-table of shape {shape}; this agent needs "
                f"{want} ({self.n_states} states x {self.n_actions} actions)"
            )
        if data.get("observation") != self.discretizer.config:
            raise ValueError(
                f"policy file {str(path)!r} discretizes observations as "
                f"{data.get('observation')!r}; this agent uses {self.discretizer.config!r}"
            )
        if data.get("action_start", 0) != self.action_start:
            raise ValueError(
                f"policy file {str(path)!r} has action_start {data.get('action_start')!r}; "
                f"this agent's action space starts at {self.action_start}"
            )
        assert table is not None
        try:
            q = [[float(v) for v in row] for row in table]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"policy file {str(path)!r} has non-numeric Q-values") from exc
        self.q = q
        self._forget()
        return data


def _shape(table: object) -> tuple[int, ...] | str:
    if not isinstance(table, list) or not all(isinstance(row, list) for row in table):
        return "not a list of lists"
    widths = {len(row) for row in table}
    if len(widths) > 1:
        return f"ragged rows of lengths {sorted(widths)}"
    return (len(table), widths.pop() if widths else 0)
