"""M1's exam machinery, shared by every graph that scores TR-TA pairs.

A pair's LbT score is the accuracy of *all* its exams pooled over students,
EPs and repetitions (every student takes the same exams, so each student
weighs the same); per-student accuracies are reported beside it.  An exam
that was planned but not taken (adaptive M1) counts as failed, so a score is
never higher than the pair could have earned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from lbt_agents.agents import Roster
from lbt_agents.config import SelectionMode
from lbt_agents.llm import Reply
from lbt_agents.scoring import Candidate, select_all
from lbt_agents.state import ExamRecord, ExamTask, PairRecord
from lbt_agents.types import Problem, TeachingItem


async def _pair_record(roster: Roster, tp: Problem, reply: Reply, pair_id: str, index: int) -> PairRecord:
    verdict = await roster.examiner.grade(tp, reply)
    return PairRecord(
        id=pair_id,
        tp_id=tp["id"],
        index=index,
        text=reply.text,
        answer=verdict["answer"],
        correct=verdict["correct"],
        score=float(verdict["score"]),
        hidden_score=verdict.get("hidden_score"),
        truncated=reply.truncated,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
    )


async def teach(roster: Roster, tp: Problem, n: int, *, greedy: bool) -> tuple[list[PairRecord], PairRecord | None]:
    """Sample ``n`` TR-TA pairs (and a greedy one) and grade their answers."""
    sampled, greedy_reply = await asyncio.gather(
        roster.teacher.teach(tp, n),
        roster.teacher.greedy(tp) if greedy else asyncio.sleep(0, result=None),
    )
    pairs = await asyncio.gather(
        *(_pair_record(roster, tp, r, f"{tp['id']}#p{i}", i) for i, r in enumerate(sampled))
    )
    g = await _pair_record(roster, tp, greedy_reply, f"{tp['id']}#greedy", -1) if greedy_reply else None
    return list(pairs), g


def exam_id(pair_id: str, student: str, ep_id: str, rep: int) -> str:
    return f"{pair_id}|{student}|{ep_id}|r{rep}"


def exam_tasks(
    item: TeachingItem,
    pairs: Sequence[PairRecord],
    students: Sequence[str],
    *,
    reps: int,
    ep_indices: Sequence[int] | None = None,
    rung: int = 0,
) -> list[ExamTask]:
    """Every (pair × EP × repetition × student) exam of one TP."""
    eps = item["eps"] if ep_indices is None else [item["eps"][i] for i in ep_indices]
    return [
        ExamTask(
            id=exam_id(pair["id"], student, ep["id"], rep),
            pair_id=pair["id"],
            student=student,
            rep=rep,
            rung=rung,
            tp=item["tp"],
            teaching=pair["text"],
            ep=ep,
        )
        for pair in pairs
        for ep in eps
        for rep in range(reps)
        for student in students
    ]


async def run_exam(roster: Roster, task: ExamTask) -> ExamRecord:
    """One student takes one exam; the examiner grades it."""
    student = roster.student(task["student"])
    reply = await student.take_exam(task["tp"], task["teaching"], task["ep"], key=task["id"])
    verdict = await roster.examiner.grade(task["ep"], reply)
    record = ExamRecord(
        id=task["id"],
        tp_id=task["tp"]["id"],
        pair_id=task["pair_id"],
        student=task["student"],
        ep_id=task["ep"]["id"],
        rep=task["rep"],
        rung=task["rung"],
        text=reply.text,
        answer=verdict["answer"],
        correct=verdict["correct"],
        score=float(verdict["score"]),
        truncated=reply.truncated,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
    )
    if "hidden_score" in verdict:
        record["hidden_score"] = float(verdict["hidden_score"])
    return record


def pair_scores(
    pair_ids: Sequence[str], exams: Sequence[ExamRecord], students: Sequence[str], planned_per_student: int
) -> dict[str, dict[str, Any]]:
    """LbT score (pooled) and per-student scores of each pair."""
    by_pair: dict[str, list[ExamRecord]] = {pid: [] for pid in pair_ids}
    for exam in exams:
        if exam["pair_id"] in by_pair:
            by_pair[exam["pair_id"]].append(exam)
    out = {}
    for pid, taken in by_pair.items():
        per_student = {
            s: sum(e["score"] for e in taken if e["student"] == s) / planned_per_student if planned_per_student else 0.0
            for s in students
        }
        out[pid] = {
            "lbt": sum(per_student.values()) / len(students) if students else 0.0,
            "per_student": per_student,
            "exams_taken": len(taken),
        }
    return out


def tp_result(
    item: TeachingItem,
    pairs: Sequence[PairRecord],
    greedy: PairRecord | None,
    exams: Sequence[ExamRecord],
    *,
    students: Sequence[str],
    modes: Sequence[SelectionMode],
    equivalent: Any,
    planned_per_student: int,
    note: str | None = None,
    stand_ins: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything about one TP: its pairs with scores and exams, and the selections.

    ``stand_ins`` maps a pair that took no exams to the pair whose score it takes.
    """
    scores = pair_scores([p["id"] for p in pairs], exams, students, planned_per_student)
    stand_ins = {pid: rep for pid, rep in (stand_ins or {}).items() if not scores[pid]["exams_taken"]}
    for pid, rep in stand_ins.items():
        scores[pid] = {**scores[rep], "exams_taken": 0}
    candidates = [Candidate(p["index"], p["answer"], p["correct"], scores[p["id"]]["lbt"]) for p in pairs]
    greedy_cand = Candidate(-1, greedy["answer"], greedy["correct"]) if greedy else None
    selections = select_all([m for m in modes if m != "greedy" or greedy], candidates, equivalent, greedy=greedy_cand)
    exams_by_pair: dict[str, list[ExamRecord]] = {}
    for exam in sorted(exams, key=lambda e: e["id"]):
        exams_by_pair.setdefault(exam["pair_id"], []).append(exam)
    return {
        "tp_id": item["tp"]["id"],
        "question": item["tp"]["question"],
        "gold": item["tp"]["answer"],
        "ep_ids": [ep["id"] for ep in item["eps"]],
        "note": note,
        "greedy": greedy,
        "pairs": [
            {
                **pair,
                "lbt": scores[pair["id"]]["lbt"],
                "per_student": scores[pair["id"]]["per_student"],
                "scored_as": stand_ins.get(pair["id"]),
                "exams": exams_by_pair.get(pair["id"], []),
            }
            for pair in sorted(pairs, key=lambda p: p["index"])
        ],
        "selections": {
            mode: {"answer": s.answer, "correct": s.correct, "pair_index": s.index, "votes": s.votes}
            for mode, s in selections.items()
        },
    }
