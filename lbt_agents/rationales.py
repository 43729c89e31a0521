"""LbT scores for rationales written anywhere: ``await score_rationales(tp, rationales, eps, classroom)``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from lbt_agents import exams as _exams
from lbt_agents.classroom import Classroom
from lbt_agents.config import M1Config
from lbt_agents.errors import ConfigError
from lbt_agents.types import PairResult, Problem, TeachingItem


async def score_rationales(
    tp: Problem,
    rationales: Sequence[str],
    eps: Sequence[Problem],
    classroom: Classroom,
    *,
    reps_per_ep: int = 1,
) -> list[PairResult]:
    """Each rationale's LbT score, in order: the classroom's students take every EP
    ``reps_per_ep`` times with the rationale (and the TP) as their example.

    Each result holds the rationale's answer and its correctness on the TP,
    ``lbt`` (pooled exam accuracy), ``per_student`` and the graded ``exams``.
    A rationale whose answer cannot be extracted is still examined.
    """
    if isinstance(rationales, str):
        raise ConfigError("score_rationales: rationales must be a list of texts, not one text")
    item = TeachingItem(tp=tp, eps=list(eps), rationales=list(rationales))
    _exams.check_items([item])
    m1 = M1Config(reps_per_ep=reps_per_ep, greedy_baseline=False, modes=["sc"])
    pairs, _ = await _exams.teach(classroom, item, len(rationales), greedy=False)
    students = classroom.students_of(classroom.teacher.name)
    tasks = _exams.exam_tasks(item, pairs, students, reps=reps_per_ep)
    replies = await asyncio.gather(*(_exams.take_exam(classroom, t) for t in tasks))
    records = await asyncio.gather(*(_exams.grade_exam(classroom, t, r) for t, r in zip(tasks, replies)))
    scores = _exams.score_tp(classroom, item, pairs, records, m1, students)
    result = _exams.tp_result(item, pairs, None, records, scores, modes=m1.modes,
                              equivalent=classroom.examiner.equivalence(tp["kind"]))
    return result["pairs"]
