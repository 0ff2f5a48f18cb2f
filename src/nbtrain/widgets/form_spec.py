"""The TrainForm's layout as the view draws it: sections of fields with their kinds,
choices and the defaults a blank field stands for."""

from __future__ import annotations

from typing import Any

from nbtrain.agents.factory import BUILTIN_AGENTS
from nbtrain.agents.params import agent_params

HYPER = ("alpha", "gamma", "epsilon", "epsilon_min", "epsilon_decay")
# Defaults and help come from the agents' own signatures and PARAM_HELP
# (nbtrain.agents.params), the single source that their docstrings and config validation
# read too. The fields start with q_learning's; the view switches to the chosen agent's.
_TABULAR = agent_params("q_learning")
HYPER_DEFAULTS = {k: _TABULAR[k].default for k in HYPER}
HYPER_HELP = {k: _TABULAR[k].help for k in HYPER}
AGENTS = tuple(BUILTIN_AGENTS)


def hyper_by_agent() -> dict[str, dict[str, dict[str, str]]]:
    """Per built-in agent, the hyperparameter fields it has: ``{name: {placeholder, help}}``
    (an agent without any, like ``random``, gets none: the view hides the fields)."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for agent in AGENTS:
        params = agent_params(agent)
        out[agent] = {
            k: {"placeholder": str(params[k].default), "help": params[k].help}
            for k in HYPER
            if k in params
        }
    return out


# Where the workers run; offered only when Ray is importable (see form.ray_available).
BACKENDS = {"local": "this machine (subprocesses)", "ray": "Ray"}
BACKEND_FIELD: dict[str, Any] = {
    "name": "backend",
    "label": "Workers run on",
    "kind": "select",
    "choices": list(BACKENDS),
    "labels": BACKENDS,
    "help": "Ray: the cluster at RAY_ADDRESS, or a local Ray instance started for this kernel",
}

# (name, label, kind, extra); kinds the view knows: text, int, float, env, select, json,
# workers. ``placeholder`` shows the default a blank field stands for.
SECTIONS: list[dict[str, Any]] = [
    {
        "title": "Environment",
        "fields": [
            {"name": "env_id", "label": "Environment", "kind": "env"},
            {
                "name": "env_kwargs",
                "label": "Env kwargs (JSON)",
                "kind": "json",
                "placeholder": "{}",
            },
        ],
    },
    {
        "title": "Agent",
        "fields": [
            {"name": "agent", "label": "Agent", "kind": "select", "choices": list(AGENTS)},
            *(
                {
                    "name": k,
                    "label": k.replace("_", " "),
                    "kind": "float",
                    "group": "tabular",
                    "placeholder": str(v),
                    "help": HYPER_HELP[k],
                }
                for k, v in HYPER_DEFAULTS.items()
            ),
        ],
    },
    {
        "title": "Run",
        "fields": [
            {"name": "name", "label": "Name", "kind": "text", "placeholder": "{env_id}-{agent}"},
            {"name": "episodes", "label": "Episodes per worker", "kind": "int"},
            {
                "name": "max_steps_per_episode",
                "label": "Max steps",
                "kind": "int",
                "placeholder": "env's limit",
                "help": "blank: the environment's registered time limit (1000 if it has none)",
            },
            {"name": "seed", "label": "Seed", "kind": "int", "placeholder": "0"},
            {"name": "step_delay", "label": "Step delay (s)", "kind": "float", "placeholder": "0"},
            {"name": "mode", "label": "Mode", "kind": "select", "choices": ["train", "eval"]},
            {"name": "policy_path", "label": "Policy path", "kind": "text", "placeholder": "none"},
            {
                "name": "checkpoint_every",
                "label": "Checkpoint every",
                "kind": "text",
                "placeholder": "100",
                "help": "save the agent every n episodes (a restart resumes from there); "
                "none: only at the end",
            },
        ],
    },
    {
        "title": "Telemetry",
        "fields": [
            {
                "name": "telemetry_steps",
                "label": "Steps recorded",
                "kind": "text",
                "placeholder": "all",
                "help": "all, none, or n (every n-th step)",
            },
            {
                "name": "frames",
                "label": "Frames",
                "kind": "select",
                "choices": ["none", "ansi", "rgb_array"],
            },
            {
                "name": "frame_every",
                "label": "Frame every n steps",
                "kind": "int",
                "placeholder": "1",
            },
        ],
    },
    {
        "title": "Workers",
        "fields": [
            {
                "name": "workers",
                "label": "Workers",
                "kind": "workers",
                "help": "a count, or one id per row (blank: auto; 7 → 000007)",
            },
        ],
    },
]
