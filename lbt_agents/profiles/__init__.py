"""Profiles: named sets of config defaults, stored as YAML files beside this module.

A run config's ``profile`` names one (``default`` or ``paper``); its settings lie under the
run's own, so a config file or ``--set`` still overrides any of them.

A profile file holds run-config defaults at its top level, plus two sections:
``kinds`` (defaults for tasks of one kind, e.g. ``code``, lying over the top level) and
``dpo`` (defaults for :class:`~lbt_agents.training.DPOSettings`, ``lbt m2 train``).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from lbt_agents.errors import ConfigError


def available() -> list[str]:
    """The names of the profiles that ship with lbt-agents."""
    return sorted(p.name.removesuffix(".yaml") for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


_SECTIONS = ("kinds", "dpo")


def _profile(name: str) -> dict[str, Any]:
    if name not in available():
        raise ConfigError(f"unknown profile {name!r}; known profiles: {', '.join(available())}")
    data = yaml.safe_load(resources.files(__name__).joinpath(f"{name}.yaml").read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(data.get(k, {}), dict) for k in _SECTIONS):
        raise ConfigError(f"profile {name!r} must hold a mapping")
    return data


def profile_name(data: dict[str, Any]) -> str:
    """The profile a config mapping names (``default`` when it names none)."""
    name = data.get("profile", "default")
    if not isinstance(name, str):
        raise ValueError(f"profile must be a name, got {name!r}")
    return name


def profile_defaults(name: str, *, task_name: str | None = None) -> dict[str, Any]:
    """The run-config defaults of profile ``name`` (with those for ``task_name``'s kind over them);
    ConfigError naming the known profiles if there is none."""
    data = _profile(name)
    defaults = {k: v for k, v in data.items() if k not in _SECTIONS}
    kinds = data.get("kinds", {})
    if kinds and task_name is not None:
        defaults = under(defaults, kinds.get(_task_kind(task_name), {}))
    return defaults


def dpo_defaults(name: str) -> dict[str, Any]:
    """Profile ``name``'s defaults for DPO training (``DPOSettings`` fields)."""
    return dict(_profile(name).get("dpo", {}))


def _task_kind(task_name: str) -> str | None:
    from lbt_agents.tasks.base import _TASKS, task_names

    task_names()  # registers the built-in tasks
    return getattr(_TASKS.get(task_name), "kind", None)


def as_data(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with config objects in it turned into the settings they were given (so profile
    defaults still fill the rest)."""
    from pydantic import BaseModel

    def plain(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value.model_dump(exclude_unset=True)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return plain(data)


def under(defaults: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``defaults`` filled in beneath it: mappings merge; a default list of one mapping is a
    template that lies under every mapping of the run's list (a profile's student settings reach each of the
    run's students); anything else is replaced."""
    merged = dict(defaults)
    for key, value in data.items():
        default = merged.get(key)
        if isinstance(value, dict) and isinstance(default, dict):
            merged[key] = under(default, value)
        elif _template(default) and isinstance(value, list) and all(isinstance(v, dict) for v in value):
            merged[key] = [under(default[0], v) for v in value]
        else:
            merged[key] = value
    return merged


def _template(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict)
