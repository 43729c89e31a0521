"""A scripted classroom on the stub server: arithmetic TPs, a teacher whose seed-0 sample teaches well.

The stub answers by the request's model and messages, as ``tests/graphs/test_m1_scoring.py``'s scripted
models do: the teacher's samples with ``seed % 4 == 0`` teach a good method and answer right, the others
(and greedy, temperature 0) teach a bad one and answer wrong; a student answers right only when the
example it was given (the assistant turn) is the good method.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from lbt_agents.types import Problem, TeachingItem

TEACHER_MODEL, STUDENT_MODEL = "teacher-model", "student-model"
PAIRS, EPS, STUDENTS = 4, 3, 2

_QUESTION = re.compile(r"What is (\d+) \+ (\d+)\?")


def respond(body: dict[str, Any], choice_index: int) -> str:
    """The stub's answer to one chat request."""
    messages = body["messages"]
    found = _QUESTION.search(str(messages[-1]["content"]))
    if found is None:
        return "I do not know."
    a, b = map(int, found.groups())
    if body.get("model") == TEACHER_MODEL:
        seed = body.get("seed")  # a request with n: choice i stands for sample seed + i
        seed = None if seed is None else seed + choice_index
        if body.get("temperature") == 0.0 or seed is None or seed % 4 != 0:
            return f"A bad method (take {seed}): add and add one. [[Final Answer]]: {a + b + 1}"
        return f"A good method: add the numbers. [[Final Answer]]: {a + b}"
    good = "good method" in str(messages[-2]["content"])
    return f"Following the example. [[Final Answer]]: {a + b if good else a + b + 7}"


def add_problem(pid: str, a: int, b: int) -> Problem:
    return Problem(id=pid, question=f"What is {a} + {b}?", answer=str(a + b), kind="math")


def item(tp_id: str, a: int, b: int) -> TeachingItem:
    """A TP ``a + b`` with ``EPS`` exam problems of the same kind."""
    eps = [add_problem(f"{tp_id}/ep{i}", a + i + 1, b + 2 * i) for i in range(EPS)]
    return TeachingItem(tp=add_problem(tp_id, a, b), eps=eps)


def model_calls(tps: int) -> int:
    """Requests one M1 run makes: per TP, one teacher request for ``PAIRS`` samples (``n``) + 1 greedy,
    then every pair's exams."""
    return tps * 2 + tps * PAIRS * EPS * STUDENTS


def run_config(base_url: str) -> dict[str, Any]:
    """A run config whose classroom talks to the stub at ``base_url`` (no call cache)."""
    agent = {"base_url": base_url}
    return {
        "task": {"name": "gsm8k"},
        "classroom": {
            "teacher": {**agent, "name": "teacher", "role": "teacher", "model": TEACHER_MODEL,
                        "sampling": {"temperature": 0.8, "n": PAIRS, "seed": 0}},
            "students": [{**agent, "name": f"s{i}", "model": STUDENT_MODEL, "sampling": {"temperature": 0.0}}
                         for i in range(STUDENTS)],
        },
        "m1": {"pairs_per_tp": PAIRS},
        "cache": {"enabled": False},
        "max_concurrency": 16,
    }  # fmt: skip


def write_run_config(path: Path, base_url: str) -> Path:
    path.write_text(yaml.safe_dump(run_config(base_url), sort_keys=False))
    return path
