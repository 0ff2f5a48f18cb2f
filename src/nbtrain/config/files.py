"""Config files: ``.json`` and ``.toml``, chosen by suffix.

A saved file holds resolved worker ids (auto ids written out), so loading it gives a config
with the same digest. TOML has no null, so ``None`` fields are left out (they are defaults);
a ``None`` inside kwargs cannot be written to TOML and is an error that suggests JSON.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrain.errors import ConfigError

if TYPE_CHECKING:
    from nbtrain.config.model import TrainConfig

__all__ = ["load_data", "save_data", "text_payload"]

_SUFFIXES = (".json", ".toml")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ConfigError(
            f"config file {str(path)!r}: unsupported file type {path.suffix!r}; use .json or .toml"
        )
    return suffix


def load_data(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw field dict in a config file; ``ConfigError`` names the file and the problem."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a file path, not {type(path).__name__}")
    file = Path(path)
    suffix = _suffix(file)
    try:
        text = file.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(file)!r}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {str(file)!r} is not UTF-8 text: {exc}") from exc
    data: object
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"config file {str(file)!r} is not valid JSON: {exc.msg} at line {exc.lineno} "
                f"column {exc.colno}"
            ) from exc
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(file)!r} is not valid TOML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {str(file)!r} must hold an object of config fields; "
            f"got {type(data).__name__}"
        )
    return data


def text_payload(config: TrainConfig) -> dict[str, Any]:
    """The config as plain values that load back to an equal config."""
    ref = config.agent_ref
    if ref.kind == "pickle":
        raise ConfigError(
            f"this config cannot be saved as text: its agent {ref.name!r} is defined in the "
            "notebook and only exists as a pickle. Move the agent into a module (e.g. "
            f"my_agents.py next to the notebook) and use agent='my_agents:{ref.name}'"
        )
    items = config.worker_spec_items()
    workers: Any
    if isinstance(config.workers, int):
        workers = config.workers
    elif all(
        spec is None or (spec.seed is None and not spec.agent_kwargs and not spec.policy_path)
        for _, spec in items
    ):
        workers = [worker_id for worker_id, _ in items]
    else:
        workers = []
        for worker_id, spec in items:
            entry: dict[str, Any] = {"worker_id": worker_id}
            if spec is not None and spec.seed is not None:
                entry["seed"] = spec.seed
            if spec is not None and spec.agent_kwargs:
                entry["agent_kwargs"] = spec.agent_kwargs
            if spec is not None and spec.policy_path is not None:
                entry["policy_path"] = str(spec.policy_path)
            workers.append(entry)
    return {
        "name": config.name,
        "env_id": config.env_id,
        "env_kwargs": config.env_kwargs,
        "agent": ref.name,
        "agent_kwargs": config.agent_kwargs,
        "episodes": config.episodes,
        "max_steps_per_episode": config.max_steps_per_episode,
        "seed": config.seed,
        "workers": workers,
        "step_delay": config.step_delay,
        "telemetry": config.telemetry.model_dump(),
        "mode": config.mode,
        "policy_path": None if config.policy_path is None else str(config.policy_path),
        "checkpoint_every": config.checkpoint_every,
    }


def _find_none(value: object, where: str) -> str | None:
    if value is None:
        return where
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find_none(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_none(item, f"{where}[{index}]")
            if found:
                return found
    return None


def save_data(config: TrainConfig, path: str | os.PathLike[str]) -> None:
    file = Path(path)
    suffix = _suffix(file)
    data = text_payload(config)
    if suffix == ".json":
        text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    else:
        import tomli_w

        # a None that is the field's default can be left out; any other None (such as
        # checkpoint_every=None, whose default is 100) has no TOML form
        fields = type(config).model_fields
        data = {
            key: value
            for key, value in data.items()
            if value is not None or fields[key].default is not None
        }
        where = _find_none(data, "")
        if where is not None:
            raise ConfigError(
                f"cannot save config as TOML to {str(file)!r}: {where} is None and TOML has no "
                "null value; save it as .json instead"
            )
        text = tomli_w.dumps(data)
    try:
        file.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write config file {str(file)!r}: {exc.strerror or exc}") from exc
