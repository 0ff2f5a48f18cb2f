"""The TrainForm's fields: their layout for the view, form values ↔ ``TrainConfig`` keyword
arguments, validation errors mapped back to fields, and the worker-id preview.

Values arrive from the view as typed text (numbers as strings); blank means "the default".
Parsing and normalization live here, in Python, so the form and ``TrainConfig`` can never
disagree about what a value means.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from nbtrain.ids import assign_worker_ids, normalize_worker_id
from nbtrain.widgets.form_help import sections_with_help
from nbtrain.widgets.form_spec import HYPER, SECTIONS, hyper_by_agent

PREVIEW_MAX = 64

FIELD_NAMES = frozenset(f["name"] for s in sections_with_help(SECTIONS) for f in s["fields"])
# The hyperparameter fields each built-in agent shows; another agent shows none.
AGENT_HYPER = {agent: frozenset(fields) for agent, fields in hyper_by_agent().items()}

DEFAULT_VALUES: dict[str, Any] = {
    "env_id": "",
    "env_kwargs": "",
    "agent": "q_learning",
    **dict.fromkeys(HYPER, ""),
    "agent_kwargs": "",
    "name": "",
    "episodes": "",
    "max_steps_per_episode": "",
    "seed": "",
    "step_delay": "",
    "mode": "train",
    "policy_path": "",
    "checkpoint_every": "",
    "telemetry_steps": "",
    "frames": "none",
    "frame_every": "",
    "workers_mode": "count",
    "workers_count": "1",
    "workers_list": [""],
    "backend": "local",
}

# keyword arguments TrainForm accepts besides db: TrainConfig's fields and the hyperparameters
CONFIG_KEYS = frozenset(
    {
        "name",
        "env_id",
        "env_kwargs",
        "agent",
        "agent_kwargs",
        "episodes",
        "max_steps_per_episode",
        "seed",
        "workers",
        "step_delay",
        "telemetry",
        "mode",
        "policy_path",
        "checkpoint_every",
        *HYPER,
    }
)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _number(value: Any, kind: type[int] | type[float]) -> int | float:
    text = _text(value)
    try:
        return kind(text) if kind is float else int(text, 10)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{text!r} is not {what}") from None


class ParsedForm:
    """Config keyword arguments from form values, plus per-field parse errors."""

    def __init__(self) -> None:
        self.kwargs: dict[str, Any] = {}
        self.errors: dict[str, str] = {}


def to_kwargs(values: Mapping[str, Any], extras: Mapping[str, Any]) -> ParsedForm:
    """Form values → ``TrainConfig`` keyword arguments.

    ``extras`` carries what the form cannot edit but keeps (a notebook-defined agent,
    agent kwargs like ``bins``, per-worker ``WorkerSpec`` rows).
    """
    out = ParsedForm()
    kw = out.kwargs

    def number(name: str, kind: type[int] | type[float], target: str | None = None) -> None:
        if _text(values.get(name)) == "":
            return
        try:
            kw[target or name] = _number(values.get(name), kind)
        except ValueError as err:
            out.errors[name] = str(err)

    for name in ("name", "env_id"):
        if _text(values.get(name)):
            kw[name] = _text(values.get(name))
    env_kwargs = _text(values.get("env_kwargs"))
    if env_kwargs:
        try:
            parsed = json.loads(env_kwargs)
        except json.JSONDecodeError as err:
            out.errors["env_kwargs"] = f"not valid JSON: {err.msg} (column {err.colno})"
        else:
            if isinstance(parsed, dict):
                kw["env_kwargs"] = parsed
            else:
                out.errors["env_kwargs"] = 'must be a JSON object such as {"map_name": "8x8"}'
    agent_text = _text(values.get("agent")) or "q_learning"
    agent = extras.get("agent_objects", {}).get(agent_text, agent_text)
    kw["agent"] = agent
    agent_kwargs = dict(extras.get("agent_kwargs", {}))
    other = _text(values.get("agent_kwargs"))
    if other:
        try:
            parsed_kwargs = json.loads(other)
        except json.JSONDecodeError as err:
            out.errors["agent_kwargs"] = f"not valid JSON: {err.msg} (column {err.colno})"
        else:
            if isinstance(parsed_kwargs, dict):
                agent_kwargs.update(parsed_kwargs)
            else:
                out.errors["agent_kwargs"] = 'must be a JSON object such as {"bins": 8}'
    shown = AGENT_HYPER.get(agent_text, frozenset())  # a hidden field's value is not sent
    for key in HYPER:
        if key in shown:
            if _text(values.get(key)) == "":
                continue
            try:
                agent_kwargs[key] = _number(values.get(key), float)
            except ValueError as err:
                out.errors[key] = str(err)
    if agent_kwargs:
        kw["agent_kwargs"] = agent_kwargs
    if _text(values.get("episodes")) == "":
        out.errors["episodes"] = "required: how many episodes each worker plays"
    number("episodes", int)
    number("max_steps_per_episode", int)
    number("seed", int)
    number("step_delay", float)
    telemetry: dict[str, Any] = {}
    steps = _text(values.get("telemetry_steps")).lower()
    if steps in ("all", "none"):
        telemetry["steps"] = steps
    elif steps:
        try:
            telemetry["steps"] = _number(steps, int)
        except ValueError:
            out.errors["telemetry_steps"] = f"{steps!r}: use all, none, or n (every n-th step)"
    if _text(values.get("frames")):
        telemetry["frames"] = _text(values.get("frames"))
    if _text(values.get("frame_every")):
        try:
            telemetry["frame_every"] = _number(values.get("frame_every"), int)
        except ValueError as err:
            out.errors["frame_every"] = str(err)
    if telemetry:
        kw["telemetry"] = telemetry
    if _text(values.get("mode")):
        kw["mode"] = _text(values.get("mode"))
    if _text(values.get("policy_path")):
        kw["policy_path"] = _text(values.get("policy_path"))
    every = _text(values.get("checkpoint_every")).lower()
    if every in ("none", "null"):
        kw["checkpoint_every"] = None
    elif every:
        try:
            kw["checkpoint_every"] = _number(every, int)
        except ValueError:
            out.errors["checkpoint_every"] = f"{every!r}: use n (every n episodes) or none"
    _workers(values, extras, out)
    return out


def _workers(values: Mapping[str, Any], extras: Mapping[str, Any], out: ParsedForm) -> None:
    mode = values.get("workers_mode", "count")
    if mode not in ("count", "list"):  # the view sends one of the two; Python may not
        out.errors["workers"] = f"workers_mode {mode!r} is not 'count' or 'list'"
        return
    listed = values.get("workers_list")
    if mode == "list" and listed is not None and not isinstance(listed, list | tuple):
        out.errors["workers"] = (
            f"workers_list must be a list of worker ids (one per row), not "
            f"{type(listed).__name__} {listed!r}"
        )
        return
    if mode == "count":
        text = _text(values.get("workers_count")) or "1"
        try:
            out.kwargs["workers"] = _number(text, int)
        except ValueError as err:
            out.errors["workers"] = str(err)
        return
    rows = list(values.get("workers_list") or [""])
    specs: Mapping[int, Any] = extras.get("worker_specs", {})
    items: list[Any] = []
    for index, row in enumerate(rows):
        text = _text(row)
        item: Any = text or None
        spec = specs.get(index)
        if spec is not None:
            from nbtrain.config import WorkerSpec

            # the whole spec (its policy_path too), with the id as the row now says
            item = WorkerSpec.model_validate({**spec.model_dump(), "worker_id": item})
        items.append(item)
    preview = worker_preview(rows)
    if any(p["error"] for p in preview):
        out.errors["workers"] = "fix the worker ids marked below"
        return
    out.kwargs["workers"] = items


def _json_plain(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


_SYMBOLS = {"alpha": "α", "gamma": "γ", "epsilon": "ε", "epsilon_min": "ε_min"}  # noqa: RUF001


def overrides_text(spec: Any) -> str:
    """A worker's own settings as its row shows them, e.g. ``seed 11 · alpha 0.5`` in Greek."""
    parts = [] if getattr(spec, "seed", None) is None else [f"seed {spec.seed}"]
    for key, value in sorted((getattr(spec, "agent_kwargs", None) or {}).items()):
        parts.append(f"{_SYMBOLS.get(key, key)} {value}")
    policy = getattr(spec, "policy_path", None)
    if policy is not None:
        parts.append(f"policy {getattr(policy, 'name', policy)}")
    return " · ".join(parts)


def worker_preview(rows: list[Any], specs: Mapping[int, Any] | None = None) -> list[dict[str, Any]]:
    """Per row: the normalized id (or the auto id a blank row gets) or the error, as typed,
    and the worker's own settings when its ``WorkerSpec`` has any."""
    result: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    specs = specs or {}
    for index, row in enumerate(rows):
        text = _text(row)
        entry: dict[str, Any] = {"input": text, "id": None, "auto": not text, "error": None}
        if index in specs and overrides_text(specs[index]):
            entry["overrides"] = overrides_text(specs[index])
        if text:
            try:
                wid = normalize_worker_id(text)
            except ValueError as err:
                entry["error"] = str(err)
            else:
                if wid in seen:
                    entry["error"] = (
                        f"duplicate: row {seen[wid] + 1} is also {wid!r}; "
                        "worker ids must be unique in a run"
                    )
                else:
                    seen[wid] = index
                    entry["id"] = wid
        result.append(entry)
    requested = [e["id"] for e in result if e["id"] or e["auto"]]
    assigned = iter(assign_worker_ids(requested))
    for entry in result:
        if entry["id"] or entry["auto"]:
            entry["id"] = next(assigned)
    return result


def count_preview(count_text: Any) -> list[dict[str, Any]]:
    try:
        count = int(_number(_text(count_text) or "1", int))
    except ValueError:
        return []
    if count < 1:
        return []
    ids = assign_worker_ids([None] * min(count, PREVIEW_MAX))
    return [{"input": "", "id": wid, "auto": True, "error": None} for wid in ids]


_PREFIX = re.compile(r"^(Value error|Assertion failed), ")
_NAMED_KEY = re.compile(r"^(?:agent_kwargs: )?(\w+)\b(?:=| \(| must)|does not take '(\w+)'")


def field_errors(exc: Exception, values: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """A ``ValidationError`` as ``{field: message}`` plus messages that belong to no field."""
    from pydantic import ValidationError

    fields: dict[str, str] = {}
    general: list[str] = []
    if not isinstance(exc, ValidationError):
        return fields, [f"{type(exc).__name__}: {exc}"]
    for error in exc.errors():
        loc = tuple(error.get("loc") or ())
        message = _PREFIX.sub("", str(error.get("msg", "")))
        name = _field_for(loc, message, values)
        if name is None:
            general.append(message if not loc else f"{'.'.join(map(str, loc))}: {message}")
        else:
            fields.setdefault(name, message)
    return fields, general


def _field_for(loc: tuple[Any, ...], message: str, values: Mapping[str, Any]) -> str | None:
    head = loc[0] if loc else None
    if head == "agent_kwargs":
        # the key the message is about: "agent_kwargs: alpha=2.0 ...", "... does not take
        # 'alpa' ...", "epsilon_min (0.5) must ...": its field if the form shows one, else
        # the JSON box (a name in the "accepted: ..." list is not the culprit)
        named = loc[1] if len(loc) > 1 else None
        match = _NAMED_KEY.search(message)
        key = named if named is not None else (match and (match.group(1) or match.group(2)))
        if key in AGENT_HYPER.get(_text(values.get("agent")), ()):
            return str(key)
        return "agent_kwargs"
    if head == "telemetry":
        sub = loc[1] if len(loc) > 1 else "frames"
        return {"steps": "telemetry_steps", "frames": "frames", "frame_every": "frame_every"}.get(
            str(sub), "frames"
        )
    if head == "workers":
        return "workers"
    if isinstance(head, str) and head in FIELD_NAMES:
        return head
    if head is None:
        if "telemetry.frames" in message:
            return "frames"
        if "policy_path" in message:
            return "policy_path"
    return None


def values_from_config(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Form values and extras from TrainConfig-style keyword arguments (or a config's fields)."""
    values = dict(DEFAULT_VALUES)
    extras: dict[str, Any] = {"agent_kwargs": {}, "worker_specs": {}, "agent_objects": {}}
    for key in ("name", "env_id", "mode"):
        if data.get(key) is not None:
            values[key] = str(data[key])
    if data.get("env_kwargs"):
        values["env_kwargs"] = json.dumps(dict(data["env_kwargs"]))
    agent = data.get("agent", "q_learning")
    if isinstance(agent, str):
        values["agent"] = agent
    else:
        label = "custom: " + getattr(agent, "__qualname__", type(agent).__name__)
        values["agent"] = label
        extras["agent_objects"][label] = agent
    agent_kwargs = dict(data.get("agent_kwargs") or {})
    shown_hyper = AGENT_HYPER.get(values["agent"], frozenset())
    for key in HYPER:
        if key in data and data[key] is not None:
            agent_kwargs[key] = data[key]
        if key in agent_kwargs and key in shown_hyper:  # else it stays in the JSON box
            values[key] = str(agent_kwargs.pop(key))
    # the rest is shown (and edited) as JSON; what JSON cannot hold stays in extras
    shown = {k: v for k, v in agent_kwargs.items() if _json_plain(v)}
    if shown:
        values["agent_kwargs"] = json.dumps(shown)
    extras["agent_kwargs"] = {k: v for k, v in agent_kwargs.items() if k not in shown}
    for key in ("episodes", "max_steps_per_episode", "seed", "step_delay"):
        if data.get(key) is not None:
            values[key] = str(data[key])
    if data.get("policy_path") is not None:
        values["policy_path"] = str(data["policy_path"])
    if "checkpoint_every" in data:
        every = data["checkpoint_every"]
        values["checkpoint_every"] = "none" if every is None else str(every)
    telemetry = data.get("telemetry")
    if telemetry is not None:
        tel = telemetry if isinstance(telemetry, Mapping) else telemetry.model_dump()
        if "steps" in tel:
            values["telemetry_steps"] = str(tel["steps"])
        if "frames" in tel:
            values["frames"] = str(tel["frames"])
        if "frame_every" in tel:
            values["frame_every"] = str(tel["frame_every"])
    workers = data.get("workers")
    if isinstance(workers, int) and not isinstance(workers, bool):
        values["workers_count"] = str(workers)
    elif isinstance(workers, list | tuple):
        rows: list[str] = []
        for index, item in enumerate(list(workers)):
            worker_id = (
                getattr(item, "worker_id", item) if not isinstance(item, int | str) else item
            )
            if hasattr(item, "worker_id"):
                extras["worker_specs"][index] = item
            rows.append("" if worker_id is None else str(worker_id))
        values["workers_mode"] = "list"
        values["workers_list"] = rows or [""]
    return values, extras
