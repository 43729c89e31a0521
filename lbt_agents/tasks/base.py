"""The task registry: a task turns a :class:`TaskConfig` into teaching items."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from lbt_agents.errors import ConfigError, DataError
from lbt_agents.types import TeachingItem

if TYPE_CHECKING:
    from lbt_agents.config import TaskConfig

TaskLoader = Callable[["TaskConfig"], list[TeachingItem]]

_TASKS: dict[str, TaskLoader] = {}


def task(name: str) -> Callable[[TaskLoader], TaskLoader]:
    """Register a task loader under ``name`` (used as ``task.name`` in configs)."""

    def register(loader: TaskLoader) -> TaskLoader:
        _TASKS[name] = loader
        return loader

    return register


def task_names() -> list[str]:
    import lbt_agents.tasks  # noqa: F401  (registers the built-in tasks)

    return sorted(_TASKS)


def load_task(cfg: "TaskConfig") -> list[TeachingItem]:
    """Load, validate and cut (offset/limit) the teaching items of a task."""
    names = task_names()
    if cfg.name not in _TASKS:
        raise ConfigError(f"unknown task {cfg.name!r}; known tasks: {', '.join(names)}")
    items = _TASKS[cfg.name](cfg)
    items = items[cfg.offset :]
    if cfg.limit is not None:
        items = items[: cfg.limit]
    if not items:
        raise DataError(f"task {cfg.name!r} has no teaching problems (offset={cfg.offset}, limit={cfg.limit})")
    for item in items:
        if not item["eps"]:
            raise DataError(f"teaching problem {item['tp']['id']!r} of task {cfg.name!r} has no exam problems")
    return items
