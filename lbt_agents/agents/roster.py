from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Mapping, Sequence

from langchain_core.language_models import BaseChatModel

from lbt_agents.agents.examiner import Examiner
from lbt_agents.agents.student import Student
from lbt_agents.agents.teacher import Teacher
from lbt_agents.cache import CallCache
from lbt_agents.config import ClassroomConfig
from lbt_agents.llm import ChatAgent, UsageMeter


@dataclass(frozen=True)
class Roster:
    """The agents of one classroom, ready to run."""

    teacher: Teacher
    students: tuple[Student, ...]
    examiner: Examiner
    meter: UsageMeter

    def student(self, name: str) -> Student:
        for s in self.students:
            if s.name == name:
                return s
        raise KeyError(name)


def make_roster(
    cfg: ClassroomConfig,
    *,
    task: str | None = None,
    models: Mapping[str, Sequence[BaseChatModel]] | None = None,
    cache: CallCache | None = None,
    max_concurrency: int = 64,
) -> Roster:
    """Build the agents of ``cfg``.  ``models`` maps agent names to chat models
    (for tests or custom providers); other agents get ``ChatOpenAI`` clients."""
    models = models or {}
    meter = UsageMeter()
    limiter = asyncio.Semaphore(max_concurrency)

    def chat(agent_cfg) -> ChatAgent:  # type: ignore[no-untyped-def]
        return ChatAgent(agent_cfg, models=models.get(agent_cfg.name), cache=cache, meter=meter, limiter=limiter)

    return Roster(
        teacher=Teacher(chat(cfg.teacher), task=task),
        students=tuple(Student(chat(s), task=task) for s in cfg.students),
        examiner=Examiner(),
        meter=meter,
    )
