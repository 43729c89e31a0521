"""Prompt files: every prompt is a text file in this package (``lbt_agents/prompts/``).

Look-up order for ``load_prompt(name, task=..., kind=...)``: ``$LBT_PROMPTS_DIR``
(if set), then the package's own files (``importlib.resources``); inside each,
``<task>/<name>`` before ``<kind>/<name>`` before ``<name>``.  Placeholders are ``{{ name }}`` or ``{{ a.b }}`` (dotted paths
into dicts); anything else, LaTeX braces included, is left as written.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from lbt_agents.errors import ConfigError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
_SUFFIXES = ("", ".md", ".txt")


def prompt_dirs() -> list[Any]:
    """Where prompt files are looked up, first match wins."""
    dirs: list[Any] = []
    if env := os.environ.get("LBT_PROMPTS_DIR"):
        if Path(env).is_dir():
            dirs.append(Path(env))
    dirs.append(resources.files(__name__))
    return dirs


@lru_cache(maxsize=256)
def _find(name: str, scopes: tuple[str, ...]) -> Any:
    for root in prompt_dirs():
        for scope in scopes:
            for suffix in _SUFFIXES:
                path = (root / scope / f"{name}{suffix}") if scope else (root / f"{name}{suffix}")
                if path.is_file():
                    return path
    tried = ", ".join(f"{s}/{name}" if s else name for s in scopes)
    raise ConfigError(f"prompt file not found: {tried} (in {', '.join(map(str, prompt_dirs()))})")


def load_prompt(name: str, *, task: str | None = None, kind: str | None = None) -> str:
    """The text of prompt file ``name``, most specific scope first."""
    scopes = tuple(s for s in (task, kind) if s) + ("",)
    path = _find(name, scopes)
    try:
        stamp = os.stat(path).st_mtime_ns  # read again only when the file changed (every request builds prompts)
    except (OSError, TypeError):
        return path.read_text(encoding="utf-8")
    return _read(str(path), stamp)


@lru_cache(maxsize=512)
def _read(path: str, stamp: int) -> str:
    return Path(path).read_text(encoding="utf-8")


def render(template: str, **values: Any) -> str:
    """Fill ``{{ name }}`` placeholders; a missing value is a ConfigError."""

    def lookup(match: re.Match[str]) -> str:
        path = match.group(1).split(".")
        node: Any = values
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise ConfigError(f"prompt placeholder {{{{ {match.group(1)} }}}} has no value")
        return str(node)

    return _PLACEHOLDER.sub(lookup, template)


def render_prompt(
    name: str, values: Mapping[str, Any] | None = None, /, *, task: str | None = None, kind: str | None = None,
    **more: Any,
) -> str:
    """``render(load_prompt(name, task=..., kind=...), **values, **more)``."""
    return render(load_prompt(name, task=task, kind=kind), **{**(values or {}), **more})
