"""What the form says under the run's fields and next to each agent, for a newcomer.

The hyperparameters' defaults and help are the agents' own (their signatures and
``PARAM_HELP``, read through ``nbtrain.agents.params`` by ``form_spec``). What stays here has
no home in the agents: the run fields' help and one line per agent (the agent classes carry
no such line; adding one would mean editing ``nbtrain/agents``). The form adds these texts to
the sections it sends, and the ``agent_kwargs`` field for what the hyperparameter fields do
not cover.
"""

from __future__ import annotations

import copy
from typing import Any

# Help for the run's own fields. The hyperparameters' help is not here: it comes from each
# agent's PARAM_HELP through nbtrain.agents.params (form_spec), the one source that the
# agents' docstrings and docs read too.
FIELD_HELP: dict[str, str] = {
    "step_delay": "seconds to wait after each step so you can watch; 0 trains at full speed",
    "episodes": "episodes each worker plays",
    "seed": "the run's seed; each worker's own seed is derived from it and its id",
    "agent_kwargs": (
        'other keyword arguments for the agent, as JSON: {"bins": 8} for a tabular agent '
        'on continuous observations, {"tilings": 8, "tiles": 8} for tile_sarsa, '
        "or a custom agent's own"
    ),
}

AGENT_HELP: dict[str, str] = {
    "q_learning": "Q-learning: learns the value of the best next action, whatever it does next",
    "sarsa": "SARSA: learns the value of the action it really takes next (more careful)",
    "expected_sarsa": "Expected SARSA: averages over its next action under ε-greedy",
    "tile_sarsa": (
        "linear SARSA on tile-coded features (Sutton & Barto §10.1): continuous (Box) "
        "observations, discrete actions"
    ),
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
