"""M1's exam machinery: teaching, exam plans, exams, LbT scores and results.

A pair's LbT score is the accuracy of *all* its exams pooled over students,
EPs and repetitions (every student takes the same exams, so each student
weighs the same); per-student accuracies are reported beside it.  An exam
that was planned but not taken (adaptive M1) counts as failed, so a score is
never higher than the pair could have earned.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lbt_agents.config import AdaptiveConfig, M1Config, SelectionMode, TieBreak
from lbt_agents.errors import ConfigError
from lbt_agents.llm import Reply
from lbt_agents.scoring import Candidate, group_answers, select_all
from lbt_agents.types import ExamRecord, ExamTask, PairRecord, PairScore, Problem, TeachingItem, TPResult

if TYPE_CHECKING:
    from lbt_agents.classroom import Classroom


def check_items(items: Sequence[TeachingItem]) -> None:
    """Bad teaching items fail here, before any model call, with one line."""
    if not isinstance(items, (list, tuple)):
        raise ConfigError("M1 input: 'items' must be a list of teaching items ({'tp': ..., 'eps': [...]})")
    seen: set[str] = set()
    for item in items:
        tp = item.get("tp") if isinstance(item, Mapping) else None
        if not isinstance(tp, Mapping) or "id" not in tp:
            raise ConfigError("M1 input: every item needs a 'tp' problem with an 'id'")
        if tp["id"] in seen:
            raise ConfigError(f"M1 input: TP id {tp['id']!r} appears twice; TP ids must be unique")
        seen.add(tp["id"])
        if not item.get("eps"):
            raise ConfigError(f"TP {tp['id']!r} has no exam problems (eps): its students have nothing to take")
        if "rationales" in item and not item["rationales"]:
            raise ConfigError(f"TP {tp['id']!r}: the rationale list is empty; give at least one rationale or drop the key")


async def pair_record(classroom: Classroom, tp: Problem, reply: Reply, pair_id: str, index: int) -> PairRecord:
    """A teacher reply (or a rationale from elsewhere) graded on the TP itself."""
    verdict = await classroom.examiner.grade(tp, reply)
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


async def teach(
    classroom: Classroom, item: TeachingItem, n: int, *, greedy: bool
) -> tuple[list[PairRecord], PairRecord | None]:
    """The TP's TR-TA pairs, graded: ``item["rationales"]`` when given, else ``n`` teacher
    samples (and a greedy one)."""
    tp = item["tp"]
    if "rationales" in item:
        sampled = [Reply(text=str(text)) for text in item["rationales"]]
        greedy_reply = None
    else:
        sampled, greedy_reply = await asyncio.gather(
            classroom.teacher.teach(tp, n),
            classroom.teacher.greedy(tp) if greedy else asyncio.sleep(0, result=None),
        )
    pairs = await asyncio.gather(*(pair_record(classroom, tp, r, f"{tp['id']}#p{i}", i) for i, r in enumerate(sampled)))
    g = await pair_record(classroom, tp, greedy_reply, f"{tp['id']}#greedy", -1) if greedy_reply else None
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
    """Every (pair × EP × repetition × student) exam of one TP; a pair's exams are adjacent."""
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


async def take_exam(classroom: Classroom, task: ExamTask) -> Reply:
    """The task's student answers its EP with the pair as the in-context example."""
    student = classroom.as_student(task["student"])
    return await student.take_exam(task["tp"], task["teaching"], task["ep"], key=task["id"])


async def grade_exam(classroom: Classroom, task: ExamTask, reply: Reply) -> ExamRecord:
    """The examiner grades a student's reply to the task's EP."""
    verdict = await classroom.examiner.grade(task["ep"], reply)
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
    if verdict.get("detail"):
        record["detail"] = str(verdict["detail"])
    return record


def pair_scores(
    pair_ids: Sequence[str], exams: Sequence[ExamRecord], students: Sequence[str], planned_per_student: int
) -> dict[str, PairScore]:
    """LbT score (pooled) and per-student scores of each pair."""
    by_pair: dict[str, list[ExamRecord]] = {pid: [] for pid in pair_ids}
    for exam in exams:
        if exam["pair_id"] in by_pair:
            by_pair[exam["pair_id"]].append(exam)
    out: dict[str, PairScore] = {}
    for pid, taken in by_pair.items():
        per_student = {
            s: sum(e["score"] for e in taken if e["student"] == s) / planned_per_student if planned_per_student else 0.0
            for s in students
        }
        out[pid] = PairScore(
            lbt=sum(per_student.values()) / len(students) if students else 0.0,
            per_student=per_student,
            exams_taken=len(taken),
            scored_as=None,
        )
    return out


def answer_groups(classroom: Classroom, item: TeachingItem, pairs: Sequence[PairRecord]) -> list[list[PairRecord]]:
    """The pairs grouped by equivalent answer, in order of first appearance (no-answer pairs left out)."""
    equivalent = classroom.examiner.equivalence(item["tp"]["kind"])
    by_index = {p["index"]: p for p in pairs}
    groups = group_answers([Candidate(p["index"], p["answer"], p["correct"]) for p in pairs], equivalent)
    return [[by_index[c.index] for c in g] for g in groups]


def stand_ins(
    classroom: Classroom, item: TeachingItem, pairs: Sequence[PairRecord], adaptive: AdaptiveConfig | None
) -> dict[str, str]:
    """Pairs that take their answer group's first pair's score (adaptive M1, one pair per answer)."""
    if adaptive is None or not adaptive.one_pair_per_answer:
        return {}
    answered = [p for p in pairs if p["answer"] is not None]
    return {p["id"]: g[0]["id"] for g in answer_groups(classroom, item, answered) for p in g[1:]}


def first_plan(classroom: Classroom, items: Sequence[TeachingItem], pairs: Mapping[str, list[PairRecord]],
               m1: M1Config, students: Sequence[str]) -> dict[str, Any]:
    """Rung 0: which pairs of each TP take exams (all answered ones, or fewer with adaptive M1)."""
    adaptive = m1.adaptive if m1.adaptive.enabled else None
    notes: dict[str, str] = {}
    active: dict[str, list[str]] = {}
    for item in items:
        tp_id = item["tp"]["id"]
        cands = [p for p in pairs.get(tp_id, []) if p["answer"] is not None]
        groups = answer_groups(classroom, item, cands)
        if not cands:
            notes[tp_id] = "no teacher answer: nothing to examine"
        elif adaptive and adaptive.skip_unanimous and len(groups) == 1:
            notes[tp_id] = "unanimous teacher answers: no exams"
        elif adaptive and adaptive.one_pair_per_answer:
            active[tp_id] = [g[0]["id"] for g in groups]
        else:
            active[tp_id] = [p["id"] for p in cands]
    return {"rung": 0, "active": active, "notes": notes, "done": False, "students": list(students)}


def next_plan(classroom: Classroom, items: Sequence[TeachingItem], pairs: Mapping[str, list[PairRecord]],
              exams: Mapping[str, list[ExamRecord]], previous: dict[str, Any], m1: M1Config) -> dict[str, Any]:
    """After a rung: successive halving keeps the pairs that can still win."""
    adaptive = m1.adaptive if m1.adaptive.enabled else None
    if adaptive is None or not adaptive.halving:
        return {**previous, "done": True}
    rung = previous["rung"] + 1
    students = previous["students"]
    by_id = {item["tp"]["id"]: item for item in items}
    notes = dict(previous["notes"])
    active = {}
    for tp_id, pair_ids in previous["active"].items():
        item = by_id[tp_id]
        n_eps = len(item["eps"])
        if rung >= n_eps:
            continue
        taken = exams.get(tp_id, [])
        if adaptive.stop_without_signal and not any(e["score"] for e in taken if e["rung"] == rung - 1):
            notes[tp_id] = f"every exam of rung {rung - 1} failed: stopped"
            continue
        answered = [p for p in pairs.get(tp_id, []) if p["answer"] is not None]
        votes = {p["id"]: len(g) for g in answer_groups(classroom, item, answered) for p in g}
        kept = _prune(
            [p for p in answered if p["id"] in pair_ids],
            votes,
            taken,
            students,
            planned=len(item["eps"]) * m1.reps_per_ep,
            remaining=(n_eps - rung) * m1.reps_per_ep,
            keep_fraction=adaptive.keep_fraction,
            equivalent=classroom.examiner.equivalence(item["tp"]["kind"]),
        )
        if kept:
            active[tp_id] = kept
    return {**previous, "rung": rung, "active": active, "notes": notes, "done": not active}


def _prune(
    pairs: list[PairRecord],
    votes: dict[str, int],
    exams: list[ExamRecord],
    students: list[str],
    *,
    planned: int,
    remaining: int,
    keep_fraction: float,
    equivalent: Any,
) -> list[str]:
    """Pairs worth another rung: those that can still win, in the best answer groups."""
    scores = pair_scores([p["id"] for p in pairs], exams, students, planned)
    lower = {pid: s["lbt"] for pid, s in scores.items()}
    upper = {pid: lb + remaining / planned for pid, lb in lower.items()}
    best = max(lower.values(), default=0.0)
    alive = [p for p in pairs if upper[p["id"]] >= best]
    groups = group_answers([Candidate(p["index"], p["answer"], p["correct"], lower[p["id"]]) for p in alive], equivalent)
    if len(groups) <= 1:
        return []  # the answer is decided
    index_to_id = {p["index"]: p["id"] for p in alive}
    groups.sort(key=lambda g: (max(c.score for c in g), votes[index_to_id[g[0].index]]), reverse=True)
    keep = groups[: max(1, math.ceil(keep_fraction * len(groups)))]
    if len(keep) <= 1:
        return []
    return [index_to_id[c.index] for g in keep for c in g]


def score_tp(
    classroom: Classroom, item: TeachingItem, pairs: Sequence[PairRecord], exams: Sequence[ExamRecord],
    m1: M1Config, students: Sequence[str],
) -> dict[str, PairScore]:
    """Each pair's LbT score; a pair that took no exams but stands in its answer group takes the group's."""
    planned = len(item["eps"]) * m1.reps_per_ep
    scores = pair_scores([p["id"] for p in pairs], exams, students, planned)
    adaptive = m1.adaptive if m1.adaptive.enabled else None
    for pid, rep in stand_ins(classroom, item, pairs, adaptive).items():
        if not scores[pid]["exams_taken"]:
            scores[pid] = PairScore(**{**scores[rep], "exams_taken": 0, "scored_as": rep})  # type: ignore[typeddict-item]
    return scores


def tp_result(
    item: TeachingItem,
    pairs: Sequence[PairRecord],
    greedy: PairRecord | None,
    exams: Sequence[ExamRecord],
    scores: Mapping[str, PairScore],
    *,
    modes: Sequence[SelectionMode],
    equivalent: Any,
    note: str | None = None,
    tie_break: TieBreak = "first_seen",
) -> TPResult:
    """Everything about one TP: its pairs with scores and exams, and the selections."""
    candidates = [Candidate(p["index"], p["answer"], p["correct"], scores[p["id"]]["lbt"]) for p in pairs]
    greedy_cand = Candidate(-1, greedy["answer"], greedy["correct"]) if greedy else None
    selections = select_all([m for m in modes if m != "greedy" or greedy], candidates, equivalent, greedy=greedy_cand,
                            tie_break=tie_break)
    groups = group_answers(candidates, equivalent)
    votes = {c.index: len(g) for g in groups for c in g}
    group_of = {c.index: i for i, g in enumerate(groups) for c in g}
    exams_by_pair: dict[str, list[ExamRecord]] = {}
    for exam in sorted(exams, key=lambda e: e["id"]):
        exams_by_pair.setdefault(exam["pair_id"], []).append(exam)
    return TPResult(
        tp_id=item["tp"]["id"],
        question=item["tp"]["question"],
        gold=item["tp"]["answer"],
        ep_ids=[ep["id"] for ep in item["eps"]],
        note=note,
        greedy=greedy,
        pairs=[
            {  # type: ignore[misc]
                **pair,
                "lbt": scores[pair["id"]]["lbt"],
                "per_student": scores[pair["id"]]["per_student"],
                "scored_as": scores[pair["id"]]["scored_as"],
                "votes": votes.get(pair["index"], 0),
                "group": group_of.get(pair["index"]),
                "exams": exams_by_pair.get(pair["id"], []),
            }
            for pair in sorted(pairs, key=lambda p: p["index"])
        ],
        selections={
            mode: {"answer": s.answer, "correct": s.correct, "pair_index": s.index, "votes": s.votes}
            for mode, s in selections.items()
        },
    )
