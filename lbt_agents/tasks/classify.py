"""The LbT-M3 tasks: Liar and Logical Fallacy as Yes/No questions (``lbt data pull paper-m3``).

Both are read as the official LbT-M3 patch prepares them. **Liar**: the LMOps/ProTeGi files
``liar/{train,test}.jsonl`` (rows ``{"label": 0|1, "text": ...}``; 1 = the statement is a lie).
**Logical Fallacy**: the Logic (``edu_*``) and LogicClimate (``climate_*``) CSVs of
causalNLP/logical-fallacy; a row is positive when its fallacy label names *faulty generalization*,
its text is the first 700 characters of ``source_article``; train = the train files, test = the
test then the dev files (the patch's ``dl_data.py``). Every problem carries the task's
instruction and its raw text in ``meta`` (what the ``paper`` M3 prompts show).
"""

from __future__ import annotations

import copy
import csv
import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from lbt_agents.errors import ConfigError, DataError
from lbt_agents.tasks._data import data_file, kind, options, random_items, require_split
from lbt_agents.tasks.base import task
from lbt_agents.types import Problem, TeachingItem

if TYPE_CHECKING:
    from lbt_agents.config import TaskConfig

CHOICES = ["Yes", "No"]
LIAR_INSTRUCTION = "Determine whether the Statement is a lie (Yes) or not (No) based on the Context and other information."
FALLACY_INSTRUCTION = "Is this text an instance of the logical fallacy of faulty generalization?"
_FALLACY_CHARS = 700
_FALLACY_SUBSETS = {"all": ("edu", "climate"), "edu": ("edu",), "climate": ("climate",)}


def _problem(pid: str, text: str, positive: bool, instruction: str) -> Problem:
    return Problem(
        id=pid,
        question=f"{instruction}\n\nText: {text.strip()}\nOptions: {', '.join(CHOICES)}",
        answer="Yes" if positive else "No",
        kind="label",
        meta={"choices": list(CHOICES), "instruction": instruction, "text": text},
    )


@lru_cache(maxsize=4)
def _liar(path: Path, split: str) -> tuple[Problem, ...]:
    problems = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                label, text = row["label"], row["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(f"{path}:{n}: not a Liar row (need JSON with 'label' 0/1 and 'text')") from None
            if label not in (0, 1) or not isinstance(text, str):
                raise DataError(f"{path}:{n}: not a Liar row (need JSON with 'label' 0/1 and 'text')")
            problems.append(_problem(f"liar/{split}/{len(problems)}", text, label == 1, LIAR_INSTRUCTION))
    if not problems:
        raise DataError(f"{path}: no rows")
    return tuple(problems)


def _items(cfg: TaskConfig, problems: tuple[Problem, ...]) -> list[TeachingItem]:
    if len(problems) < 2:
        raise DataError(f"task {cfg.name!r}: fewer than 2 problems in split {cfg.split!r}")
    return copy.deepcopy(random_items(cfg, list(problems)))


@task("liar")
@kind("label")
def liar(cfg: TaskConfig) -> list[TeachingItem]:
    """Liar (LbT-M3, Table 5): is the political statement a lie? Yes/No (train 3681, test 461)."""
    options(cfg, {})
    split = require_split(cfg, ("train", "test"))
    return _items(cfg, _liar(data_file(cfg, f"liar/{split}.jsonl"), split))


@lru_cache(maxsize=8)
def _fallacy_rows(path: Path) -> tuple[tuple[str, bool], ...]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            column = next((c for c in ("logical_fallacies", "updated_label") if c in (reader.fieldnames or [])), None)
            if column is None or "source_article" not in (reader.fieldnames or []):
                raise DataError(f"{path}: not a Logical Fallacy CSV (need columns source_article and "
                                "logical_fallacies or updated_label)")
            return tuple((row["source_article"] or "", "faulty generalization" in (row[column] or ""))
                         for row in reader)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from None


@task("logical_fallacy")
@kind("label")
def logical_fallacy(cfg: TaskConfig) -> list[TeachingItem]:
    """Logical Fallacy (LbT-M3, Table 5): is the text a faulty generalization? Yes/No (option subset: all/edu/climate)."""
    opts = options(cfg, {"subset": "all"})
    if opts["subset"] not in _FALLACY_SUBSETS:
        raise ConfigError(f"task 'logical_fallacy': option subset must be one of {', '.join(_FALLACY_SUBSETS)}, "
                          f"got {opts['subset']!r}")
    split = require_split(cfg, ("train", "test"))
    parts = ("train",) if split == "train" else ("test", "dev")
    rows = [row for part in parts for subset in _FALLACY_SUBSETS[opts["subset"]]
            for row in _fallacy_rows(data_file(cfg, f"logical_fallacy/{subset}_{part}.csv"))]
    problems = tuple(_problem(f"logical_fallacy/{opts['subset']}/{split}/{i}", text[:_FALLACY_CHARS], positive,
                              FALLACY_INSTRUCTION) for i, (text, positive) in enumerate(rows))
    return _items(cfg, problems)
