"""M1: score each TR-TA pair by how well students learn from it, then select.

``teach`` (one task per TP, via ``Send``) → ``plan`` → ``exam`` (one task per
pair × EP × repetition × student, via ``Send``) → ``plan`` … → ``select``.

Without adaptive compute ``plan`` schedules every exam at once.  With it,
``plan`` skips TPs whose teacher answers all agree, examines one pair per
answer group and one EP per rung, drops pairs that can no longer win
(successive halving) and stops a TP after a rung in which every exam failed.  Exams
already recorded in the state are never scheduled again, so a resumed run
picks up where it stopped.

Input: ``{"items": [TeachingItem, ...]}``; output: ``{"results": {tp_id: ...}}``.
"""

from __future__ import annotations

import math
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from lbt_agents.agents import Roster
from lbt_agents.config import M1Config
from lbt_agents.exams import exam_tasks, pair_scores, run_exam, teach, tp_result
from lbt_agents.scoring import Candidate, group_answers
from lbt_agents.state import ExamTask, M1Input, M1Output, M1State
from lbt_agents.types import TeachingItem


def build_graph(roster: Roster, m1: M1Config, *, checkpointer: Any = None, name: str = "m1_scoring") -> Any:
    """Compile the M1 graph for ``roster`` and settings ``m1``."""
    students = [s.name for s in roster.students]
    adaptive = m1.adaptive if m1.adaptive.enabled else None

    async def teach_node(state: dict[str, TeachingItem]) -> dict[str, Any]:
        tp = state["item"]["tp"]
        pairs, greedy = await teach(roster, tp, m1.pairs_per_tp, greedy=m1.greedy_baseline)
        return {"pairs": {p["id"]: p for p in pairs}, "greedy": {tp["id"]: greedy} if greedy else {}}

    def by_tp(state: M1State, key: str) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for record in state.get(key, {}).values():
            out.setdefault(record["tp_id"], []).append(record)
        return out

    def answer_groups(item: TeachingItem, pairs: list[Any]) -> list[list[Any]]:
        equivalent = roster.examiner.equivalence(item["tp"]["kind"])
        by_index = {p["index"]: p for p in pairs}
        groups = group_answers([Candidate(p["index"], p["answer"], p["correct"]) for p in pairs], equivalent)
        return [[by_index[c.index] for c in g] for g in groups]

    def stand_ins(item: TeachingItem, pairs: list[Any]) -> dict[str, str]:
        if adaptive is None or not adaptive.one_pair_per_answer:
            return {}
        answered = [p for p in pairs if p["answer"] is not None]
        return {p["id"]: g[0]["id"] for g in answer_groups(item, answered) for p in g[1:]}

    def planned_per_student(item: TeachingItem) -> int:
        return len(item["eps"]) * m1.reps_per_ep

    def plan_node(state: M1State) -> dict[str, Any]:
        pairs = by_tp(state, "pairs")
        previous = state.get("plan") or {}
        items = {item["tp"]["id"]: item for item in state["items"]}
        answered = {
            item["tp"]["id"]: [p for p in pairs.get(item["tp"]["id"], []) if p["answer"] is not None]
            for item in state["items"]
        }
        if not previous:
            notes: dict[str, str] = {}
            active: dict[str, list[str]] = {}
            for tp_id, cands in answered.items():
                groups = answer_groups(items[tp_id], cands)
                if not cands:
                    notes[tp_id] = "no teacher answer: nothing to examine"
                elif adaptive and adaptive.skip_unanimous and len(groups) == 1:
                    notes[tp_id] = "unanimous teacher answers: no exams"
                elif adaptive and adaptive.one_pair_per_answer:
                    active[tp_id] = [g[0]["id"] for g in groups]
                else:
                    active[tp_id] = [p["id"] for p in cands]
            return {"plan": {"rung": 0, "active": active, "notes": notes, "done": False}}
        if adaptive is None or not adaptive.halving:
            return {"plan": {**previous, "done": True}}
        rung = previous["rung"] + 1
        exams = by_tp(state, "exams")
        notes = dict(previous["notes"])
        active = {}
        for tp_id, pair_ids in previous["active"].items():
            n_eps = len(items[tp_id]["eps"])
            if rung >= n_eps:
                continue
            taken = exams.get(tp_id, [])
            if adaptive.stop_without_signal and not any(e["score"] for e in taken if e["rung"] == rung - 1):
                notes[tp_id] = f"every exam of rung {rung - 1} failed: stopped"
                continue
            votes = {p["id"]: len(g) for g in answer_groups(items[tp_id], answered[tp_id]) for p in g}
            kept = _prune(
                [p for p in answered[tp_id] if p["id"] in pair_ids],
                votes,
                taken,
                students,
                planned=planned_per_student(items[tp_id]),
                remaining=(n_eps - rung) * m1.reps_per_ep,
                keep_fraction=adaptive.keep_fraction,
                equivalent=roster.examiner.equivalence(items[tp_id]["tp"]["kind"]),
            )
            if kept:
                active[tp_id] = kept
        return {"plan": {**previous, "rung": rung, "active": active, "notes": notes, "done": not active}}

    def route_exams(state: M1State) -> list[Send] | str:
        plan = state["plan"]
        if plan.get("done"):
            return "select"
        pairs = state.get("pairs", {})
        done = state.get("exams", {})
        sends: list[Send] = []
        for item in state["items"]:
            pair_ids = plan["active"].get(item["tp"]["id"], [])
            if not pair_ids:
                continue
            eps = [plan["rung"]] if adaptive and adaptive.halving else None
            for task in exam_tasks(
                item, [pairs[p] for p in pair_ids], students, reps=m1.reps_per_ep, ep_indices=eps, rung=plan["rung"]
            ):
                if task["id"] not in done:
                    sends.append(Send("exam", task))
        if not sends and (adaptive is None or not adaptive.halving):
            return "select"
        return sends or "plan"

    async def exam_node(task: ExamTask) -> dict[str, Any]:
        record = await run_exam(roster, task)
        return {"exams": {record["id"]: record}}

    def select_node(state: M1State) -> dict[str, Any]:
        pairs = by_tp(state, "pairs")
        exams = by_tp(state, "exams")
        greedy = state.get("greedy", {})
        notes = (state.get("plan") or {}).get("notes", {})
        results = {}
        for item in state["items"]:
            tp_id = item["tp"]["id"]
            results[tp_id] = tp_result(
                item,
                pairs.get(tp_id, []),
                greedy.get(tp_id),
                exams.get(tp_id, []),
                students=students,
                modes=m1.modes,
                equivalent=roster.examiner.equivalence(item["tp"]["kind"]),
                planned_per_student=planned_per_student(item),
                note=notes.get(tp_id),
                stand_ins=stand_ins(item, pairs.get(tp_id, [])),
            )
        return {"results": results}

    def fan_out_teaching(state: M1State) -> list[Send]:
        return [Send("teach", {"item": item}) for item in state["items"]]

    builder = StateGraph(M1State, input_schema=M1Input, output_schema=M1Output)
    builder.add_node("teach", teach_node)
    builder.add_node("plan", plan_node)
    builder.add_node("exam", exam_node)
    builder.add_node("select", select_node)
    builder.add_conditional_edges(START, fan_out_teaching, ["teach"])
    builder.add_edge("teach", "plan")
    builder.add_conditional_edges("plan", route_exams, ["exam", "select", "plan"])
    builder.add_edge("exam", "plan")
    builder.add_edge("select", END)
    return builder.compile(checkpointer=checkpointer, name=name)


def _prune(
    pairs: list[dict[str, Any]],
    votes: dict[str, int],
    exams: list[dict[str, Any]],
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


def make_graph(config: dict[str, Any] | None = None) -> Any:
    """Graph factory for ``langgraph.json``: the run config comes from the YAML
    file named by ``configurable.lbt_config`` or ``$LBT_CONFIG``; its agents
    must point at running OpenAI-compatible endpoints."""
    import os

    from lbt_agents.agents import make_roster
    from lbt_agents.config import load_config

    path = ((config or {}).get("configurable") or {}).get("lbt_config") or os.environ.get("LBT_CONFIG")
    cfg = load_config(path)
    roster = make_roster(cfg.classroom, task=cfg.task.name, max_concurrency=cfg.max_concurrency)
    return build_graph(roster, cfg.m1)
