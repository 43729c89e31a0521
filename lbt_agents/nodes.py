"""Node factories: the steps of M1 as LangGraph nodes, each importable and testable alone.

Every factory returns a plain (async) function of the graph state (or of a
``Send`` payload) that returns a state update.  Nodes find their classroom at
run time, in the graph's runtime context (``graph.ainvoke(inputs,
context=classroom)``), unless a factory is given ``classroom=``: a
:class:`Classroom`, or a function that picks one from the context (two M1
subgraphs with different classrooms in one app).

State keys (see :func:`m1_state`): ``items`` in; ``pairs``, ``greedy``,
``exams``, ``plan``, ``scores`` inside; the results under ``output_key``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, Union

from langgraph.types import Overwrite, Send
from typing_extensions import TypedDict

from lbt_agents import exams as _exams
from lbt_agents.classroom import Classroom
from lbt_agents.config import M1Config
from lbt_agents.errors import ConfigError
from lbt_agents.state import merge
from lbt_agents.types import ExamRecord, ExamTask, PairRecord, PairScore, TeachingItem, TPResult

ClassroomSource = Union[Classroom, Callable[[Any], Classroom], None]
"""Where a node finds its classroom: fixed, picked from the runtime context, or (``None``) the context itself."""

Update = dict[str, Any]


def resolve_classroom(source: ClassroomSource = None) -> Classroom:
    """The classroom a node runs with (see :data:`ClassroomSource`); one clear error if there is none."""
    if isinstance(source, Classroom):
        return source
    from langgraph.runtime import get_runtime

    try:
        context = get_runtime().context
    except (RuntimeError, KeyError, AttributeError):
        context = None
    found = source(context) if callable(source) else context
    if not isinstance(found, Classroom) and isinstance(getattr(found, "classroom", None), Classroom):
        found = found.classroom  # type: ignore[union-attr]
    if not isinstance(found, Classroom):
        raise ConfigError(
            "this teaching graph needs a classroom: pass context=Classroom.from_config(...) to "
            "invoke/ainvoke/astream, or build the graph with classroom=..."
        )
    return found


def m1_state(output_key: str = "results") -> tuple[type, type, type]:
    """The M1 state, input and output schemas, with results under ``output_key``."""
    if not output_key.isidentifier() or output_key in _INTERNAL_KEYS:
        raise ConfigError(f"output_key {output_key!r} must be an identifier other than {sorted(_INTERNAL_KEYS)}")
    state = TypedDict(  # type: ignore[misc]
        "M1State",
        {
            "items": list[TeachingItem],
            "pairs": Annotated[dict[str, PairRecord], merge],
            "greedy": Annotated[dict[str, PairRecord], merge],
            "exams": Annotated[dict[str, ExamRecord], merge],
            "plan": dict[str, Any],
            "scores": dict[str, PairScore],
            output_key: dict[str, TPResult],
        },
    )
    inputs = TypedDict("M1Input", {"items": list[TeachingItem]})  # type: ignore[misc]
    outputs = TypedDict("M1Output", {output_key: dict[str, TPResult]})  # type: ignore[misc]
    return state, inputs, outputs


_INTERNAL_KEYS = frozenset({"items", "pairs", "greedy", "exams", "plan", "scores"})


def intake_node(*, output_key: str = "results", classroom: ClassroomSource = None) -> Callable[[Mapping[str, Any]], Update]:
    """Checks the items and the classroom before any model call, and starts this invocation afresh
    (a second run on the same thread computes new results)."""

    def intake(state: Mapping[str, Any]) -> Update:
        _exams.check_items(state.get("items"))  # type: ignore[arg-type]
        resolve_classroom(classroom)
        return {"pairs": Overwrite({}), "greedy": Overwrite({}), "exams": Overwrite({}), "plan": {}, "scores": {},
                output_key: {}}

    return intake


def route_teaching(state: Mapping[str, Any]) -> list[Send]:
    """One ``teach`` task per teaching item."""
    return [Send("teach", {"item": item}) for item in state["items"]]


def teach_node(m1: M1Config | None = None, *, classroom: ClassroomSource = None) -> Callable[[Mapping[str, Any]], Awaitable[Update]]:
    """``{"item": TeachingItem}`` → the TP's graded TR-TA pairs (and greedy pair): sampled from the
    teacher, or the item's own ``rationales`` when it has them."""
    m1 = m1 or M1Config()

    async def teach(payload: Mapping[str, Any]) -> Update:
        item = payload["item"]
        pairs, greedy = await _exams.teach(resolve_classroom(classroom), item, m1.pairs_per_tp, greedy=m1.greedy_baseline)
        return {"pairs": {p["id"]: p for p in pairs}, "greedy": {item["tp"]["id"]: greedy} if greedy else {}}

    return teach


def _by_tp(records: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for record in (records or {}).values():
        out.setdefault(record["tp_id"], []).append(record)
    return out


def plan_exams_node(m1: M1Config | None = None, *, classroom: ClassroomSource = None) -> Callable[[Mapping[str, Any]], Update]:
    """Which exams come next: all of them, or (adaptive M1) the next rung's."""
    m1 = m1 or M1Config()

    def plan(state: Mapping[str, Any]) -> Update:
        room = resolve_classroom(classroom)
        pairs = _by_tp(state.get("pairs"))
        previous = state.get("plan") or {}
        if not previous:
            students = room.students_of(room.teacher.name)
            return {"plan": _exams.first_plan(room, state["items"], pairs, m1, students)}
        if not previous.get("done") and _pending_exams(state, m1, limit=1):
            return {}  # this rung's exams still go out, m1.exams_per_step at a time
        return {"plan": _exams.next_plan(room, state["items"], pairs, _by_tp(state.get("exams")), previous, m1)}

    return plan


def _pending_exams(state: Mapping[str, Any], m1: M1Config, limit: int | None = None) -> list[ExamTask]:
    """The current rung's planned exams not yet taken, in dispatch order (the first ``limit``)."""
    plan, pairs, done = state["plan"], state.get("pairs", {}), state.get("exams", {})
    halving = m1.adaptive.enabled and m1.adaptive.halving
    pending: list[ExamTask] = []
    for item in state["items"]:
        pair_ids = plan["active"].get(item["tp"]["id"], [])
        if not pair_ids:
            continue
        tasks = _exams.exam_tasks(item, [pairs[p] for p in pair_ids], plan["students"], reps=m1.reps_per_ep,
                                  ep_indices=[plan["rung"]] if halving else None, rung=plan["rung"])
        pending += [task for task in tasks if task["id"] not in done]
        if limit is not None and len(pending) >= limit:
            return pending[:limit]
    return pending


def route_exams(m1: M1Config | None = None) -> Callable[[Mapping[str, Any]], Union[list[Send], str]]:
    """After ``plan``: ``Send("exam", task)`` for the planned exams not yet taken (at most
    ``m1.exams_per_step``; ``plan`` sends the rest next); else ``score`` (or ``plan`` again for the next rung)."""
    m1 = m1 or M1Config()
    halving = m1.adaptive.enabled and m1.adaptive.halving

    def route(state: Mapping[str, Any]) -> Union[list[Send], str]:
        if state["plan"].get("done"):
            return "score"
        sends = [Send("exam", task) for task in _pending_exams(state, m1, m1.exams_per_step)]
        if not sends and not halving:
            return "score"
        return sends or "plan"

    return route


def exam_node(*, classroom: ClassroomSource = None) -> Callable[[ExamTask], Awaitable[Update]]:
    """``ExamTask`` → the student takes the exam and the examiner grades it."""

    async def exam(task: ExamTask) -> Update:
        room = resolve_classroom(classroom)
        record = await _exams.grade_exam(room, task, await _exams.take_exam(room, task))
        return {"exams": {record["id"]: record}}

    return exam


def score_pairs_node(m1: M1Config | None = None, *, classroom: ClassroomSource = None) -> Callable[[Mapping[str, Any]], Update]:
    """Each pair's LbT score from its exams (``scores``)."""
    m1 = m1 or M1Config()

    def score(state: Mapping[str, Any]) -> Update:
        room = resolve_classroom(classroom)
        pairs, exams = _by_tp(state.get("pairs")), _by_tp(state.get("exams"))
        students = (state.get("plan") or {}).get("students") or room.students_of(room.teacher.name)
        scores: dict[str, PairScore] = {}
        for item in state["items"]:
            tp_id = item["tp"]["id"]
            scores.update(_exams.score_tp(room, item, pairs.get(tp_id, []), exams.get(tp_id, []), m1, students))
        return {"scores": scores}

    return score


def select_node(
    m1: M1Config | None = None, *, output_key: str = "results", classroom: ClassroomSource = None
) -> Callable[[Mapping[str, Any]], Update]:
    """Each TP's result (pairs, scores, exams) and the answer every mode selects, under ``output_key``."""
    m1 = m1 or M1Config()

    def select(state: Mapping[str, Any]) -> Update:
        room = resolve_classroom(classroom)
        pairs, exams = _by_tp(state.get("pairs")), _by_tp(state.get("exams"))
        greedy, scores = state.get("greedy", {}), state.get("scores", {})
        notes = (state.get("plan") or {}).get("notes", {})
        results = {}
        for item in state["items"]:
            tp_id = item["tp"]["id"]
            results[tp_id] = _exams.tp_result(
                item, pairs.get(tp_id, []), greedy.get(tp_id), exams.get(tp_id, []), scores,
                modes=m1.modes, equivalent=room.examiner.equivalence(item["tp"]["kind"]), note=notes.get(tp_id),
                tie_break=m1.tie_break,
            )
        return {output_key: results}

    return select


def lbt_reward_node(
    *,
    draft_key: str = "draft",
    problem_key: str = "problem",
    eps_key: str = "eps",
    score_key: str = "lbt_score",
    reps_per_ep: int = 1,
    classroom: ClassroomSource = None,
) -> Callable[[Mapping[str, Any]], Awaitable[Update]]:
    """Scores the draft(s) in a user's state by LbT: students take the EPs with each draft as
    their example.  ``state[draft_key]`` is a text or a list of texts; ``state[score_key]``
    becomes a float or a list of floats (their LbT scores)."""

    async def reward(state: Mapping[str, Any]) -> Update:
        from lbt_agents.rationales import score_rationales

        drafts = state.get(draft_key)
        if drafts is None:
            raise ConfigError(f"lbt_reward_node: the state has no {draft_key!r} to score")
        many = not isinstance(drafts, str)
        texts: Sequence[str] = list(drafts) if many else [drafts]
        scored = await score_rationales(state[problem_key], texts, state[eps_key], resolve_classroom(classroom),
                                        reps_per_ep=reps_per_ep)
        scores = [p["lbt"] for p in scored]
        return {score_key: scores if many else scores[0]}

    return reward
