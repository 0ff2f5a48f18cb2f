"""The TrainForm's layout as the view draws it: sections of fields with their kinds,
choices and the defaults a blank field stands for."""

from __future__ import annotations

from typing import Any

HYPER = ("alpha", "gamma", "epsilon", "epsilon_min", "epsilon_decay")
HYPER_DEFAULTS = {
    "alpha": 0.1,
    "gamma": 0.99,
    "epsilon": 1.0,
    "epsilon_min": 0.05,
    "epsilon_decay": 0.99,
}
AGENTS = ("q_learning", "sarsa", "expected_sarsa", "random")

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
                "placeholder": "1000",
            },
            {"name": "seed", "label": "Seed", "kind": "int", "placeholder": "0"},
            {"name": "step_delay", "label": "Step delay (s)", "kind": "float", "placeholder": "0"},
            {"name": "mode", "label": "Mode", "kind": "select", "choices": ["train", "eval"]},
            {"name": "policy_path", "label": "Policy path", "kind": "text", "placeholder": "none"},
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
