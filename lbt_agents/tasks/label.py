"""Label tasks: BIG-bench binary tasks and knights-and-knaves posed as true/false questions.

Each has a seeded train/test split (option ``test_size``: a fraction or a count);
every problem of the split is a TP and its EPs are other problems of the same split.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from random import Random
from typing import TYPE_CHECKING

from lbt_agents.errors import ConfigError, DataError
from lbt_agents.tasks._data import data_file, kind, options, random_items, read_json, split_indices
from lbt_agents.tasks.base import task
from lbt_agents.types import Problem, TeachingItem

if TYPE_CHECKING:
    from lbt_agents.config import TaskConfig


def _question(text: str, choices: list[str]) -> str:
    return f"{text.strip()}\nOptions: {', '.join(choices)}"


@lru_cache(maxsize=4)
def _bigbench(path: Path, short_name: str) -> tuple[Problem, ...]:
    data = read_json(path)
    try:
        prefix = data.get("task_prefix", "")
        problems = []
        for i, ex in enumerate(data["examples"]):
            scores = ex["target_scores"]
            choices = list(scores)
            gold = [c for c, s in scores.items() if s == 1]
            if len(gold) != 1:
                raise DataError(f"{path}: example {i} has {len(gold)} targets with score 1 (need exactly 1)")
            problems.append(
                Problem(
                    id=f"bigbench/{short_name}/{i}",
                    question=_question(prefix + ex["input"], choices),
                    answer=gold[0],
                    kind="label",
                    meta={"choices": choices},
                )
            )
    except (KeyError, TypeError, AttributeError):
        raise DataError(f"{path}: not a BIG-bench task file (need examples[].input and .target_scores)") from None
    if len(problems) < 2:
        raise DataError(f"{path}: fewer than 2 examples")
    return tuple(problems)


def _bigbench_task(cfg: TaskConfig, file_name: str, short_name: str, test_size: float | int) -> list[TeachingItem]:
    opts = options(cfg, {"test_size": test_size})
    problems = _bigbench(data_file(cfg, f"bigbench/{file_name}.json"), short_name)
    labels = [p["answer"] for p in problems]
    split = [problems[i] for i in split_indices(cfg, len(problems), opts["test_size"], labels)]
    return copy.deepcopy(random_items(cfg, split))


@task("formal_fallacies")
@kind("label")
def formal_fallacies(cfg: TaskConfig) -> list[TeachingItem]:
    """BIG-bench formal_fallacies_syllogisms_negation: is the argument valid or invalid? (test: 1000)."""
    return _bigbench_task(cfg, "formal_fallacies_syllogisms_negation", "formal_fallacies", 1000)


@task("causal_judgment")
@kind("label")
def causal_judgment(cfg: TaskConfig) -> list[TeachingItem]:
    """BIG-bench causal_judgment: how would a typical person answer (Yes/No)? (test: 30%)."""
    return _bigbench_task(cfg, "causal_judgment", "causal_judgment", 0.3)


_KK_DEFAULTS = {"size": 500, "n_people": 3, "depth_constraint": 2, "width_constraint": 2, "test_size": 0.3}
_KK_CHOICES = ["True", "False"]


@lru_cache(maxsize=4)
def _knights_knaves(seed: int, size: int, n_people: int, depth: int, width: int) -> tuple[Problem, ...]:
    from reasoning_gym.logic.knights_knaves import KnightsKnavesConfig, KnightsKnavesDataset

    ds = KnightsKnavesDataset(
        KnightsKnavesConfig(
            n_people=n_people, depth_constraint=depth, width_constraint=width, size=size, seed=seed
        )
    )
    problems = []
    for i in range(size):
        ex = ds[i]
        meta = ex["metadata"]
        names = [str(n) for n in meta["names"]]
        terms = meta["knight_knave_terms"]
        solution = [bool(s) for s in meta["solution"]]
        rng = Random(f"knights_knaves:{seed}:{i}")
        person = rng.randrange(n_people)
        target = i % 2 == 0  # balanced classes
        claims_knight = solution[person] if target else not solution[person]
        role = terms["a_knight"] if claims_knight else terms["a_knave"]
        statement = f"{names[person]} is {role}."
        puzzle = ex["question"].split(" So who is ", 1)[0]
        problems.append(
            Problem(
                id=f"knights_knaves/p{n_people}d{depth}w{width}/seed{seed}/{i}",
                question=_question(f'{puzzle} Is the following statement true or false? "{statement}"', _KK_CHOICES),
                answer="True" if target else "False",
                kind="label",
                solution=ex["answer"],
                meta={"choices": list(_KK_CHOICES), "statement": statement, "names": names, "roles": solution},
            )
        )
    return tuple(problems)


@task("knights_knaves")
@kind("label")
def knights_knaves(cfg: TaskConfig) -> list[TeachingItem]:
    """Knights and knaves (reasoning-gym) as true/false questions about one person's role (balanced)."""
    opts = options(cfg, dict(_KK_DEFAULTS))
    try:
        params = [int(opts[k]) for k in ("size", "n_people", "depth_constraint", "width_constraint")]
    except (TypeError, ValueError):
        raise ConfigError("task 'knights_knaves': size, n_people, depth_constraint, width_constraint must be integers") from None
    if params[0] < 2 or min(params[1:]) < 1:
        raise ConfigError("task 'knights_knaves': need size >= 2 and n_people, depth, width >= 1")
    try:
        problems = _knights_knaves(cfg.seed, *params)
    except (IndexError, AssertionError) as exc:
        raise DataError(f"task 'knights_knaves': reasoning-gym could not generate puzzles ({exc})") from None
    labels = [p["answer"] for p in problems]
    split = [problems[i] for i in split_indices(cfg, len(problems), opts["test_size"], labels)]
    return copy.deepcopy(random_items(cfg, split))
