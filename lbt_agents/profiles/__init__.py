"""Profiles: named sets of config defaults, stored as YAML files beside this module.

A run config's ``profile`` names one (``default`` or ``paper``); its settings lie under the
run's own, so a config file or ``--set`` still overrides any of them.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from lbt_agents.errors import ConfigError


def available() -> list[str]:
    """The names of the profiles that ship with lbt-agents."""
    return sorted(p.name.removesuffix(".yaml") for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def profile_defaults(name: str) -> dict[str, Any]:
    """The config defaults of profile ``name``; ConfigError naming the known ones if there is none."""
    if name not in available():
        raise ConfigError(f"unknown profile {name!r}; known profiles: {', '.join(available())}")
    data = yaml.safe_load(resources.files(__name__).joinpath(f"{name}.yaml").read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"profile {name!r} must hold a mapping")
    return data


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
