"""Tasks: registered loaders that turn a :class:`TaskConfig` into teaching items.

Importing this package registers the built-in tasks; no data is read until a
loader is called. Reference data sets that a clone lacks are fetched with :func:`pull_data`
(``lbt data pull NAME``) into the cache, which loaders read when no data dir is given.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lbt_agents.errors import ConfigError, DataError
from lbt_agents.tasks import classify, generated, gsm8k, label, math  # noqa: F401  (register the built-in tasks)
from lbt_agents.tasks._data import resolve_data_dir
from lbt_agents.tasks._pull import (
    DATASETS,
    DataFile,
    DataSet,
    data_cache_dir,
    dataset_present,
    get_dataset,
    pull_data,
)
from lbt_agents.tasks.base import _TASKS, load_task, task, task_names
from lbt_agents.types import Problem

with contextlib.suppress(ImportError):
    from lbt_agents.tasks import code  # noqa: F401

if TYPE_CHECKING:
    from lbt_agents.config import TaskConfig

__all__ = [
    "DATASETS",
    "DataFile",
    "DataSet",
    "TaskInfo",
    "data_cache_dir",
    "dataset_present",
    "get_dataset",
    "load_problems",
    "load_task",
    "pull_data",
    "resolve_data_dir",
    "task",
    "task_info",
    "task_names",
]


@dataclass(frozen=True)
class TaskInfo:
    """What ``lbt tasks`` shows about a registered task."""

    name: str
    kind: str
    description: str


def task_info() -> list[TaskInfo]:
    """Name, kind and one-line description of every registered task (loads no data)."""
    infos = []
    for name in task_names():
        loader = _TASKS[name]
        doc = (loader.__doc__ or "").strip().splitlines()
        infos.append(TaskInfo(name, getattr(loader, "kind", "?"), doc[0] if doc else ""))
    return infos


def load_problems(cfg: TaskConfig) -> list[Problem]:
    """The unique problems (TPs, then EPs not seen before) of a task/split, in a stable order.

    ``cfg.offset`` and ``cfg.limit`` cut this flat list (not the teaching items).
    """
    if cfg.name not in task_names():
        raise ConfigError(f"unknown task {cfg.name!r}; known tasks: {', '.join(task_names())}")
    items = _TASKS[cfg.name](cfg)
    seen: set[str] = set()
    flat: list[Problem] = []
    for problem in [it["tp"] for it in items] + [ep for it in items for ep in it["eps"]]:
        if problem["id"] not in seen:
            seen.add(problem["id"])
            flat.append(problem)
    flat = flat[cfg.offset :]
    if cfg.limit is not None:
        flat = flat[: cfg.limit]
    if not flat:
        raise DataError(f"task {cfg.name!r} has no problems (offset={cfg.offset}, limit={cfg.limit})")
    return flat
