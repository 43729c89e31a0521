"""Helpers shared by the built-in task loaders: data paths, options, splits, tags."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from random import Random
from typing import TYPE_CHECKING, Any, TypeVar

from lbt_agents.errors import ConfigError, DataError
from lbt_agents.tasks._pull import data_cache_dir, dataset_for_file
from lbt_agents.types import Problem, TaskKind, TeachingItem

if TYPE_CHECKING:
    from lbt_agents.config import TaskConfig

F = TypeVar("F", bound=Callable[..., Any])


def kind(task_kind: TaskKind) -> Callable[[F], F]:
    """Tag a loader with the kind of its problems (shown by ``lbt tasks``)."""

    def tag(loader: F) -> F:
        loader.kind = task_kind  # type: ignore[attr-defined]
        return loader

    return tag


SHARED_DATA_DIR = Path("../shared/data")
"""The reference data folder beside a development checkout (relative to the working directory)."""


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    """The folder loaders read: ``data_dir`` when given, else ``$LBT_DATA_DIR``, else ``../shared/data``
    when it exists, else the cache's data folder (filled by ``lbt data pull``).

    ``../shared/data`` itself counts as not given (it is the config's default when ``$LBT_DATA_DIR`` is unset).
    """
    if data_dir is not None and Path(data_dir) != SHARED_DATA_DIR:
        return Path(data_dir).expanduser()
    env = os.environ.get("LBT_DATA_DIR")
    if env:
        return Path(env).expanduser()
    if SHARED_DATA_DIR.is_dir():
        return SHARED_DATA_DIR
    return data_cache_dir()


def data_file(cfg: TaskConfig, relative: str) -> Path:
    """``relative`` inside the task's data dir (:func:`resolve_data_dir`); a DataError naming the path
    and the fix when absent."""
    path = resolve_data_dir(cfg.data_dir) / relative
    if not path.is_file():
        spec = dataset_for_file(relative)
        pull = f"run `lbt data pull {spec.name}`, or " if spec is not None else ""
        raise DataError(
            f"task {cfg.name!r}: data file not found: {path} "
            f"({pull}pass task.data_dir=<folder that holds {relative}>)"
        )
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    raise DataError(f"{path}:{n}: not valid JSON") from None
    return rows


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def options(cfg: TaskConfig, defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated by ``cfg.options``; an unknown option is a ConfigError."""
    unknown = sorted(set(cfg.options) - set(defaults))
    if unknown:
        known = ", ".join(sorted(defaults)) or "none"
        raise ConfigError(f"task {cfg.name!r}: unknown option(s) {', '.join(unknown)} (known: {known})")
    return {**defaults, **cfg.options}


def require_split(cfg: TaskConfig, allowed: tuple[str, ...]) -> str:
    if cfg.split not in allowed:
        raise ConfigError(f"task {cfg.name!r}: split {cfg.split!r} is not one of {', '.join(allowed)}")
    return cfg.split


def split_indices(
    cfg: TaskConfig, n: int, test_size: float | int, labels: list[str] | None = None
) -> list[int]:
    """Indices of ``cfg.split`` ("train"/"test") in a seeded shuffle of ``range(n)``;
    stratified by ``labels`` when given (each label keeps its share in both splits)."""
    split = require_split(cfg, ("train", "test"))
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
        raise ConfigError(f"task {cfg.name!r}: option test_size must be a fraction or a count, got {test_size!r}")
    n_test = round(n * test_size) if isinstance(test_size, float) and test_size < 1 else int(test_size)
    if not 0 < n_test < n:
        raise ConfigError(f"task {cfg.name!r}: test_size={test_size!r} leaves an empty split of {n} problems")
    order = list(range(n))
    Random(cfg.seed).shuffle(order)
    if labels is None:
        test = set(order[:n_test])
    else:
        groups: dict[str, list[int]] = {}
        for i in order:
            groups.setdefault(labels[i], []).append(i)
        keys = sorted(groups)
        exact = {k: n_test * len(groups[k]) / n for k in keys}
        quota = {k: int(exact[k]) for k in keys}
        for k in sorted(keys, key=lambda k: (-(exact[k] - quota[k]), k))[: n_test - sum(quota.values())]:
            quota[k] += 1
        test = {i for k in keys for i in groups[k][: quota[k]]}
    return [i for i in order if (i in test) == (split == "test")]


def random_items(cfg: TaskConfig, problems: list[Problem]) -> list[TeachingItem]:
    """Every problem a TP, its EPs ``cfg.eps_per_tp`` other problems drawn at random (seeded)."""
    n = len(problems)
    k = min(cfg.eps_per_tp, n - 1)
    items: list[TeachingItem] = []
    for i, tp in enumerate(problems):
        rng = Random(f"{cfg.seed}:{tp['id']}")
        picks = [j + (j >= i) for j in rng.sample(range(n - 1), k)] if k > 0 else []
        items.append(TeachingItem(tp=tp, eps=[problems[j] for j in picks]))
    return items


def neighbour_items(problems: list[Problem], neighbours: list[list[int]]) -> list[TeachingItem]:
    return [TeachingItem(tp=p, eps=[problems[j] for j in nn]) for p, nn in zip(problems, neighbours)]
