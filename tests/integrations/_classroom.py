"""A scripted classroom for the adapter tests: students learn only from a "good method" rationale."""

from __future__ import annotations

import re
from collections.abc import Callable

from lbt_agents import Classroom, ScriptedChatModel
from lbt_agents.config import AgentConfig, ClassroomConfig, Sampling
from lbt_agents.types import Problem


def add_problem(pid: str, a: int, b: int) -> Problem:
    return Problem(id=pid, question=f"What is {a} + {b}?", answer=str(a + b), kind="math")


def eps_for(tp_id: str, n: int = 3) -> list[Problem]:
    return [add_problem(f"{tp_id}/ep{j}", j + 2, 3 * j + 1) for j in range(n)]


def learns_from_good_method(messages: list[dict[str, str]]) -> str:
    """Right on the EP when the example (the rationale) teaches the "good method", else off by seven."""
    a, b = map(int, re.findall(r"\d+", messages[-1]["content"])[:2])
    good = "good method" in messages[-2]["content"]
    return f"Following the example. [[Final Answer]]: {a + b if good else a + b + 7}"


def scripted_classroom(*students: Callable[..., str]) -> tuple[Classroom, dict[str, ScriptedChatModel]]:
    """A classroom of scripted students ``s0, s1, ...`` (default: two that learn from the good method),
    and their models.  Its teacher is never asked: the rationales come from outside."""
    students = students or (learns_from_good_method, learns_from_good_method)
    cfg = ClassroomConfig(
        teacher=AgentConfig(name="teacher", role="teacher"),
        students=[AgentConfig(name=f"s{i}", sampling=Sampling(temperature=0.0)) for i in range(len(students))],
    )
    models = {"teacher": ScriptedChatModel(respond=lambda m: "the teacher must not be asked")}
    models |= {f"s{i}": ScriptedChatModel(respond=fn) for i, fn in enumerate(students)}
    return Classroom.from_config(cfg, models=models), models
