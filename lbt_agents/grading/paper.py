"""The paper profile's math examiner (``grading.math: paper``): the official extraction and grading.

Every reply has an answer (the first ``[[Final Answer]]:`` line, else its last line, normalised the
Minerva way), which is also the exact grouping key; correctness is the MATH ``is_equiv``.
"""

from __future__ import annotations

import asyncio

from lbt_agents.paper import FINAL_ANSWER_MARKER, extract_answer, grade
from lbt_agents.types import Problem, TaskKind, Verdict

_INLINE_CHARS = 20_000
"""Longer replies are graded in a thread, off the event loop."""


class PaperMathGrader:
    """Grader for ``kind: math`` as the official pipeline grades (see :mod:`lbt_agents.paper`)."""

    kind: TaskKind = "math"

    def extract(self, reply: str) -> str:
        return extract_answer(reply or "")

    def normalize(self, answer: str) -> str:
        return answer

    def equivalent(self, a: str, b: str) -> bool:
        """Answers are the same only when their normalised strings are (``0.5`` and ``\\frac{1}{2}`` differ)."""
        return a == b

    def grade_sync(self, problem: Problem, reply: str, *, truncated: bool = False) -> Verdict:
        answer = self.extract(reply)
        correct = grade(answer, problem["answer"])
        return Verdict(answer=answer, correct=correct, score=1.0 if correct else 0.0, truncated=truncated,
                       detail="" if FINAL_ANSWER_MARKER in (reply or "") else "no [[Final Answer]] line: the last line is the answer")

    async def grade(self, problem: Problem, reply: str, *, truncated: bool = False) -> Verdict:
        if len(reply or "") > _INLINE_CHARS:
            return await asyncio.to_thread(self.grade_sync, problem, reply, truncated=truncated)
        return self.grade_sync(problem, reply, truncated=truncated)

