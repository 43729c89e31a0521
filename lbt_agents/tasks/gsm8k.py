"""GSM8K tasks: plain GSM8K, and functional variants from reasoning-gym's GSM-Symbolic templates."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from random import Random
from typing import TYPE_CHECKING, Any, Callable

from lbt_agents.errors import ConfigError, DataError
from lbt_agents.tasks._data import data_file, kind, neighbour_items, options, read_jsonl, require_split
from lbt_agents.tasks._similarity import nearest_neighbours
from lbt_agents.tasks.base import task
from lbt_agents.types import Problem, TeachingItem

if TYPE_CHECKING:
    from lbt_agents.config import TaskConfig


def gsm8k_answer(text: str) -> tuple[str, str]:
    """``(rationale, final answer)`` of a GSM8K ``answer`` field (``... #### 1,234``)."""
    rationale, sep, final = text.rpartition("####")
    if not sep:
        raise ValueError("no '####' in the answer")
    return rationale.strip(), final.strip().replace(",", "")


@lru_cache(maxsize=4)
def _gsm8k(path: Path, split: str) -> tuple[Problem, ...]:
    problems = []
    for i, row in enumerate(read_jsonl(path)):
        try:
            rationale, final = gsm8k_answer(row["answer"])
            question = row["question"]
        except (KeyError, ValueError, AttributeError):
            raise DataError(f"{path}:{i + 1}: a GSM8K row needs question and an answer ending in '#### N'") from None
        problems.append(
            Problem(id=f"gsm8k/{split}/{i}", question=question, answer=final, kind="math", solution=rationale)
        )
    if not problems:
        raise DataError(f"{path}: no problems")
    return tuple(problems)


@lru_cache(maxsize=8)
def _gsm8k_neighbours(path: Path, split: str, k: int) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(r) for r in nearest_neighbours([p["question"] for p in _gsm8k(path, split)], k))


@task("gsm8k")
@kind("math")
def gsm8k(cfg: TaskConfig) -> list[TeachingItem]:
    """GSM8K (train or test split); EPs = the most similar other problems of the split (TF-IDF)."""
    options(cfg, {})
    split = require_split(cfg, ("train", "test"))
    path = data_file(cfg, f"gsm8k/{split}.jsonl")
    problems = list(_gsm8k(path, split))
    items = neighbour_items(problems, [list(r) for r in _gsm8k_neighbours(path, split, cfg.eps_per_tp)])
    return copy.deepcopy(items)


_MAX_TRIES = 50


def gsm_symbolic_templates(which: str = "ok") -> list[int]:
    """Template indices of reasoning-gym's GSM-Symbolic generators ("ok": the vetted ones)."""
    from reasoning_gym.arithmetic.gsm_symbolic import gsm_symbolic

    if which == "ok":
        return sorted(gsm_symbolic.tasks_ok)
    if which == "all":
        return sorted(gsm_symbolic.tasks_ok + gsm_symbolic.tasks_need_fix)
    raise ConfigError(f"task 'gsm8k_functional': option templates must be 'ok' or 'all', got {which!r}")


def _generator(index: int) -> Callable[[Random, float], dict[str, Any]]:
    from reasoning_gym.arithmetic.gsm_symbolic import generators_00_49, generators_50_99

    module = generators_00_49 if index < 50 else generators_50_99
    return getattr(module, f"generate_{index}")


def gsm_symbolic_instance(template: int, seed: int) -> Problem:
    """One GSM-Symbolic instance: template ``template`` filled with ``random.Random(seed)``."""
    ex = _generator(template)(Random(seed), 1.0)
    meta = ex.get("metadata", {})
    return Problem(
        id=f"gsm_symbolic/{template:02d}/seed{seed}",
        question=ex["question"],
        answer=str(ex["answer"]),
        kind="math",
        solution=str(meta.get("answer_cot", "")),
        meta={"template": template, "seed": seed},
    )


@task("gsm8k_functional")
@kind("math")
def gsm8k_functional(cfg: TaskConfig) -> list[TeachingItem]:
    """GSM-Symbolic (reasoning-gym): one template = one TP (seed), new numbers (seed+1, ...) = its EPs."""
    opts = options(cfg, {"templates": "ok"})
    require_split(cfg, ("test",))
    items: list[TeachingItem] = []
    for template in gsm_symbolic_templates(opts["templates"]):
        tp = gsm_symbolic_instance(template, cfg.seed)
        seen, eps = {tp["question"]}, []
        for seed in range(cfg.seed + 1, cfg.seed + 1 + _MAX_TRIES):
            ep = gsm_symbolic_instance(template, seed)
            if ep["question"] not in seen:
                seen.add(ep["question"])
                eps.append(ep)
            if len(eps) == cfg.eps_per_tp:
                break
        items.append(TeachingItem(tp=tp, eps=eps))
    return items
