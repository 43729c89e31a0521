"""What both adapters share: the library check, the classroom check and problem clean-up."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from lbt_agents.classroom import Classroom
from lbt_agents.errors import ConfigError
from lbt_agents.types import Problem

_OPTIONAL_KEYS = ("solution", "meta")


def require(module: str, extra: str, adapter: str) -> ModuleType:
    """Import an optional library, or one clear line naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{adapter} needs {module}: pip install 'lbt-agents[{extra}]'") from None


def check_classroom(classroom: Any, adapter: str) -> Classroom:
    if not isinstance(classroom, Classroom):
        raise ConfigError(
            f"{adapter}: classroom must be a lbt_agents.Classroom (e.g. Classroom.from_config(...)), "
            f"got {type(classroom).__name__}"
        )
    return classroom


def as_problem(value: Any, what: str) -> Problem:
    """A problem from a dataset row: a mapping with id, question, answer and kind.  Optional keys
    that a table filled with ``None`` (an Arrow column is the union of its rows' keys) are dropped."""
    if hasattr(value, "toDict"):  # a dspy.Example
        value = value.toDict()
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{what} must be a problem mapping with id, question, answer and kind, got {type(value).__name__}"
        )
    missing = [k for k in ("id", "question", "answer", "kind") if value.get(k) is None]
    if missing:
        raise ConfigError(f"{what} lacks {', '.join(missing)} (a problem needs id, question, answer and kind)")
    problem = {k: v for k, v in value.items() if not (k in _OPTIONAL_KEYS and v is None)}
    problem["answer"] = str(problem["answer"])
    return problem  # type: ignore[return-value]
