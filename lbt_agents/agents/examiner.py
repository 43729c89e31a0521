from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from lbt_agents.errors import LbtError
from lbt_agents.grading.base import Grader, get_grader
from lbt_agents.llm import Reply
from lbt_agents.types import Problem, TaskKind, Verdict


@dataclass(frozen=True)
class Examiner:
    """Grades replies against ground truth with the grader of each problem's kind.

    A missing or malformed answer is wrong, never a crash.
    """

    graders: dict[str, Grader] = field(default_factory=dict)

    def grader(self, kind: TaskKind) -> Grader:
        if kind not in self.graders:
            self.graders[kind] = get_grader(kind)
        return self.graders[kind]

    async def grade(self, problem: Problem, reply: Reply) -> Verdict:
        try:
            return await self.grader(problem["kind"]).grade(problem, reply.text, truncated=reply.truncated)
        except LbtError:
            raise  # e.g. no sandbox for code: the run must stop, not grade everything wrong
        except Exception as exc:  # noqa: BLE001 - a grader bug must not kill a long run
            return Verdict(answer=None, correct=False, score=0.0, truncated=reply.truncated, detail=f"grader error: {exc}")

    def equivalence(self, kind: TaskKind) -> Callable[[str, str], bool]:
        """How answers of ``kind`` are compared when grouping them for votes."""
        return self.grader(kind).equivalent
