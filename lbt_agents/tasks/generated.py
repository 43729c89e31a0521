"""Generated tasks: a reasoning-gym family with short numeric answers, made on the fly (no data files)."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from lbt_agents.errors import ConfigError, DataError
from lbt_agents.tasks._data import kind, options, random_items, require_split
from lbt_agents.tasks.base import task
from lbt_agents.types import Problem, TeachingItem

if TYPE_CHECKING:
    from lbt_agents.config import TaskConfig

_DEFAULTS: dict[str, Any] = {"family": "simple_equations", "config": {}, "size": 200}


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _thawed(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value


@lru_cache(maxsize=8)
def _generate(family: str, frozen_config: tuple[tuple[str, Any], ...], size: int, seed: int) -> tuple[Problem, ...]:
    import reasoning_gym

    config = {k: _thawed(v) for k, v in frozen_config}
    try:
        dataset = reasoning_gym.create_dataset(family, size=size, seed=seed, **config)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ConfigError(f"task 'reasoning_gym': family {family!r} rejects config {config!r} ({exc})") from None
    problems = []
    for i in range(size):
        ex = dataset[i]
        problems.append(
            Problem(
                id=f"reasoning_gym/{family}/seed{seed}/{i}",
                question=str(ex["question"]).strip(),
                answer=str(ex["answer"]).strip(),
                kind="math",
                meta={"family": family},
            )
        )
    return tuple(problems)


@task("reasoning_gym")
@kind("math")
def reasoning_gym_task(cfg: TaskConfig) -> list[TeachingItem]:
    """A reasoning-gym family with numeric answers (option family, config): each problem a TP, its EPs others."""
    import reasoning_gym

    opts = options(cfg, dict(_DEFAULTS))
    require_split(cfg, ("test",))
    family, config, size = opts["family"], opts["config"], opts["size"]
    if family not in reasoning_gym.factory.DATASETS:
        raise ConfigError(f"task 'reasoning_gym': unknown family {family!r} (see reasoning_gym.factory.DATASETS)")
    if not isinstance(config, dict):
        raise ConfigError(f"task 'reasoning_gym': option config must be a mapping, got {config!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ConfigError(f"task 'reasoning_gym': option size must be an integer >= 2, got {size!r}")
    problems = list(_generate(family, _frozen(config), size, cfg.seed))
    if len({p["question"] for p in problems}) < 2:
        raise DataError(f"task 'reasoning_gym': family {family!r} generated fewer than 2 distinct problems")
    return copy.deepcopy(random_items(cfg, problems))
