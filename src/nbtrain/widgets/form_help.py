# ruff: noqa: RUF001  (the Greek letters are the names a textbook uses)
"""What the form says under its fields and next to each agent, for a newcomer.

Kept apart from ``form_spec`` (the layout, whose defaults come from the agents' own
signatures) so the two can be merged into one home without touching the view: the form
adds these texts to the sections it sends, and the ``agent_kwargs`` field for everything
the hyperparameter fields do not cover.
"""

from __future__ import annotations

import copy
from typing import Any

FIELD_HELP: dict[str, str] = {
    "alpha": "α, step size: how far one update moves a value toward its target (0 < α ≤ 1)",
    "gamma": "γ, discount: what a reward one step later is worth now (γ near 1 looks far ahead)",
    "epsilon": "ε, exploration: the chance of a random action instead of the best known one",
    "epsilon_min": "ε never decays below this",
    "epsilon_decay": "after each episode ε ← max(ε_min, ε·decay); 1.0 keeps ε constant",
    "max_steps_per_episode": (
        "an episode is cut off (truncated) after this many steps; "
        "blank: the environment's own limit"
    ),
    "step_delay": "seconds to wait after each step so you can watch; 0 trains at full speed",
    "episodes": "episodes each worker plays",
    "seed": "the run's seed; each worker's own seed is derived from it and its id",
    "agent_kwargs": (
        'other keyword arguments for the agent, as JSON: {"bins": 8} for a tabular agent '
        "on continuous observations, or a custom agent's own"
    ),
}

AGENT_HELP: dict[str, str] = {
    "q_learning": "Q-learning: learns the value of the best next action, whatever it does next",
    "sarsa": "SARSA: learns the value of the action it really takes next (more careful)",
    "expected_sarsa": "Expected SARSA: averages over its next action under ε-greedy",
    "tile_sarsa": "linear SARSA on tile-coded features, for continuous observations",
    "random": "random actions: a baseline that does not learn",
}

AGENT_KWARGS_FIELD: dict[str, Any] = {
    "name": "agent_kwargs",
    "label": "Other agent kwargs (JSON)",
    "kind": "json",
    "placeholder": "{}",
}


def sections_with_help(sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``sections`` with help texts filled in where the layout has none, and the
    ``agent_kwargs`` field after the hyperparameters."""
    out = copy.deepcopy(sections)
    for section in out:
        fields = section["fields"]
        for spec in fields:
            spec.setdefault("help", FIELD_HELP.get(spec["name"], ""))
            if not spec["help"]:
                del spec["help"]
        names = [f["name"] for f in fields]
        if "agent" in names and "agent_kwargs" not in names:
            fields.append({**AGENT_KWARGS_FIELD, "help": FIELD_HELP["agent_kwargs"]})
    return out
