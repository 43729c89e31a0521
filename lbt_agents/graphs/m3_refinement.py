"""M3: refine in-context exemplars from the pooled failures of diverse students.

Per teaching lane (a teacher and its students: the classroom's who-teaches-whom, see
:class:`lbt_agents.Classroom`)
and per round::

    start_round → answer (Send: beam set × student × minibatch problem) → pool
      → explain (Send: beam set with failures; ``reasons`` samples) → plan_write
      → write (Send: one new set per reason; parse retries) → gather (dedup)
      → score (Send: new set; teacher as predictor on the scoring sample)
      → select (beam) → evaluate (Send: best set; teacher on the test split) → record

Round 0 is the initial set (K training examples, or written by the teacher),
scored and evaluated the same way.  All lanes advance in lockstep and share
the seeded initial set, minibatches and scoring sample, so lanes (student
settings) are comparable.  Every record stays in the state (sets, scores,
answers, reasons, evals, rounds, log); nodes skip work already recorded, so a
resumed run continues where it stopped.

The classroom is the runtime context (``ainvoke(inputs, context=classroom)``);
its lanes are recorded in the state at the start, so a resumed run keeps them.

Input: ``{"train": [Problem], "test": [Problem]}``; output: the whole state.
"""

from __future__ import annotations

import asyncio
import operator
from dataclasses import dataclass
from random import Random
from typing import Annotated, Any, Sequence

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send
from typing_extensions import TypedDict

from lbt_agents import (
    Agent,
    Classroom,
    ClassroomSource,
    ConfigError,
    EndpointError,
    Lane,
    M3Config,
    Problem,
    RunConfig,
    merge,
    resolve_classroom,
)
from lbt_agents.budget import BudgetExhausted
from lbt_agents.exemplars import (
    Exemplar,
    ExemplarParseError,
    format_exemplars,
    from_problem,
    parse_exemplars,
    set_key,
)
from lbt_agents.llm import Message, Reply
from lbt_agents.prompts import render_prompt


class M3Input(TypedDict):
    train: list[Problem]
    test: list[Problem]


class M3State(TypedDict):
    train: list[Problem]
    test: list[Problem]
    lanes: list[dict[str, Any]]
    """Who teaches whom, recorded at the start: ``[{"teacher": name, "students": [names]}]``."""
    round: int
    beams: dict[str, list[str]]
    """Lane (teacher name) -> ids of the kept sets, best first."""
    sets: Annotated[dict[str, dict[str, Any]], merge]
    scores: Annotated[dict[str, dict[str, Any]], merge]
    answers: Annotated[dict[str, dict[str, Any]], merge]
    reasons: Annotated[dict[str, dict[str, Any]], merge]
    evals: Annotated[dict[str, dict[str, Any]], merge]
    rounds: Annotated[dict[str, dict[str, Any]], merge]
    """``"<lane>|r<round>"`` -> the round's row (see :func:`round_row`)."""
    log: Annotated[list[dict[str, Any]], operator.add]


@dataclass(frozen=True)
class Plan:
    """The seeded split of the training problems shared by every lane."""

    init: tuple[int, ...]
    score_sample: tuple[int, ...]
    pool: tuple[int, ...]

    def minibatch(self, round_: int, size: int, seed: int) -> list[int]:
        return sorted(Random(f"{seed}:minibatch:{round_}").sample(list(self.pool), min(size, len(self.pool))))


def make_plan(n_train: int, m3: M3Config) -> Plan:
    """Initial exemplars, scoring sample and minibatch pool (indices into train)."""
    if m3.k >= n_train:
        raise ConfigError(
            f"m3.k={m3.k} exemplars need more training problems than that (the training split has {n_train}); "
            "lower m3.k or raise task.limit"
        )
    order = list(range(n_train))
    Random(f"{m3.seed}:m3").shuffle(order)
    init, rest = order[: m3.k], order[m3.k :]
    return Plan(tuple(init), tuple(rest[: m3.score_sample]), tuple(rest))


def m3_graph(
    m3: M3Config | None = None,
    *,
    classroom: ClassroomSource = None,
    checkpointer: Any = None,
    name: str = "m3_refinement",
) -> CompiledStateGraph:
    """Compile the M3 graph; every lane of the classroom (teacher and its students) refines its own sets."""
    m3 = m3 or M3Config()

    def lanes_of(state: M3State) -> list[Lane]:
        return [Lane(lane["teacher"], tuple(lane["students"])) for lane in state["lanes"]]

    def plan_of(state: M3State) -> Plan:
        return make_plan(len(state["train"]), m3)

    def choices_of(state: M3State) -> list[str] | None:
        first = state["train"][0]
        return list((first.get("meta") or {}).get("choices") or []) or None if first["kind"] == "label" else None

    def hint(choices: Sequence[str] | None) -> str:
        return f", one of: {', '.join(choices)}" if choices else ""

    async def predict(agent: Agent, exemplars: Sequence[Exemplar], problem: Problem, key: str,
                      *, shared: bool = False, **overrides: Any) -> dict[str, Any]:
        """One graded answer.  ``shared``: identical requests to the same model and endpoint in flight at
        once (teachers of several lanes scoring the same set) are sent once."""
        try:
            reply = await agent.answer_with_shots(exemplars, problem, key=key, coalesce=shared, **overrides)
        except BudgetExhausted:
            raise  # the run stops; this answer is asked again on resume
        except EndpointError as exc:
            return {"status": "down", "error": str(exc), "text": "", "answer": None, "correct": False}
        except Exception as exc:  # noqa: BLE001 - one bad request (e.g. too long) must not stop the round
            return {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300], "text": "",
                    "answer": None, "correct": False}
        verdict = await resolve_classroom(classroom).examiner.grade(problem, reply)
        return {"status": "ok", "text": reply.text, "answer": verdict["answer"], "correct": bool(verdict["correct"]),
                "truncated": reply.truncated, "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens}

    async def teacher_predicts(teacher: str, exemplars: Sequence[Exemplar], problems: Sequence[Problem],
                               key: str) -> list[dict[str, Any]]:
        agent = resolve_classroom(classroom).as_teacher(teacher)
        limit = {"max_tokens": m3.predict_max_tokens} if m3.predict_max_tokens else {}
        out = await asyncio.gather(*(predict(agent, exemplars, p, f"m3:{key}:{p['id']}", shared=True, temperature=0.0,
                                             **limit)
                                     for p in problems))
        down = [o for o in out if o["status"] == "down"]
        if down:
            raise EndpointError(f"teacher {teacher!r} is down: {down[0]['error']}")
        return [{"problem_id": p["id"], **o} for p, o in zip(problems, out)]

    async def write_set(teacher: str, prompt: str, k: int, choices: Sequence[str] | None,
                        key: str) -> tuple[list[Exemplar] | None, list[dict[str, Any]]]:
        """Ask for K exemplars; retry with the parse error; ``(None, attempts)`` if none parse."""
        agent = resolve_classroom(classroom).as_teacher(teacher)
        messages: list[Message] = agent.writing_messages(prompt)
        attempts: list[dict[str, Any]] = []
        for attempt in range(m3.max_parse_retries + 1):
            try:
                [reply] = await agent.write(messages, key=f"m3:{key}:a{attempt}")
            except (EndpointError, BudgetExhausted):
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. a prompt over the context limit: no set this time
                attempts.append({"text": "", "error": f"request failed: {type(exc).__name__}: {exc}"[:300]})
                break
            try:
                exemplars = parse_exemplars(reply.text, k, choices=choices)
                attempts.append({"text": reply.text, "error": None})
                return exemplars, attempts
            except ExemplarParseError as exc:
                attempts.append({"text": reply.text, "error": str(exc)})
                retry = render_prompt("parse_retry", task="m3", error=str(exc), k=k, choices_hint=hint(choices))
                messages = [*messages, {"role": "assistant", "content": reply.text}, {"role": "user", "content": retry}]
        return None, attempts

    # ---- round 0 -----------------------------------------------------------------
    async def init_node(state: M3State) -> dict[str, Any]:
        room = resolve_classroom(classroom)
        lanes = [lane for lane in room.lanes() if lane.students]
        if not lanes:
            raise ConfigError("M3 needs at least one teacher with students (classroom.edges)")
        plan = plan_of(state)
        train = state["train"]
        base = [from_problem(train[i]) for i in plan.init]
        choices = choices_of(state)

        async def one(lane: Lane) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            set_id = f"{lane.teacher}/r0/init"
            record = {"id": set_id, "lane": lane.teacher, "round": 0, "parent": None, "reason": None,
                      "exemplars": base, "status": "init", "origin": "train", "attempts": []}
            log: list[dict[str, Any]] = []
            if m3.init == "teacher":
                problems = "\n\n".join(
                    render_prompt("exemplar", task="m3", index=j, question=e["question"], solution="(to write)",
                                  answer=e["answer"]).strip()
                    for j, e in enumerate(base, 1)
                )
                prompt = render_prompt("init", task="m3", k=m3.k, problems=problems, choices_hint=hint(choices))
                written, attempts = await write_set(lane.teacher, prompt, m3.k, choices, f"init:{lane.teacher}")
                record["attempts"] = attempts
                if written is None:
                    log.append({"round": 0, "lane": lane.teacher, "event": "parse_failed",
                                "detail": f"initial set: {attempts[-1]['error']}; started from training examples"})
                else:
                    record.update(exemplars=written, origin="teacher")
            record["key"] = set_key(record["exemplars"])
            return record, log

        done = await asyncio.gather(*(one(lane) for lane in lanes))
        return {
            "round": 0,
            "sets": {r["id"]: r for r, _ in done},
            "beams": {r["lane"]: [r["id"]] for r, _ in done},
            "lanes": [{"teacher": lane.teacher, "students": list(lane.students)} for lane in lanes],
            "log": [e for _, log in done for e in log],
        }

    # ---- scoring and selection ---------------------------------------------------
    def route_scoring(state: M3State) -> list[Send] | str:
        r = state["round"]
        scored = state.get("scores", {})
        sends = [
            Send("score", {"set": s, "train": state["train"]})
            for s in state["sets"].values()
            if s["round"] == r and s["status"] in ("init", "candidate") and s["id"] not in scored
        ]
        return sends or "select"

    async def score_node(payload: dict[str, Any]) -> dict[str, Any]:
        s, train = payload["set"], payload["train"]
        problems = [train[i] for i in make_plan(len(train), m3).score_sample]
        preds = await teacher_predicts(s["lane"], s["exemplars"], problems, "score")
        correct = sum(p["correct"] for p in preds)
        return {"scores": {s["id"]: {"set_id": s["id"], "score": correct / len(preds), "n": len(preds),
                                      "predictions": preds}}}

    def select_node(state: M3State) -> dict[str, Any]:
        r, scores = state["round"], state.get("scores", {})
        beams = {}
        for lane in lanes_of(state):
            incumbents = [] if r == 0 else list(state["beams"][lane.teacher])
            new = [s["id"] for s in state["sets"].values()
                   if s["lane"] == lane.teacher and s["round"] == r and s["status"] in ("init", "candidate")]
            pool = [sid for sid in dict.fromkeys(incumbents + new) if sid in scores]
            ranked = sorted(pool, key=lambda sid: -scores[sid]["score"])  # stable: incumbents win ties
            beams[lane.teacher] = ranked[: m3.beam] or incumbents
        return {"beams": beams}

    def route_eval(state: M3State) -> list[Send] | str:
        r = state["round"]
        sends = [
            Send("evaluate", {"lane": lane.teacher, "round": r, "set": state["sets"][state["beams"][lane.teacher][0]],
                              "test": state["test"]})
            for lane in lanes_of(state)
            if f"{lane.teacher}|r{r}" not in state.get("evals", {})
        ]
        return sends or "record"

    async def evaluate_node(payload: dict[str, Any]) -> dict[str, Any]:
        s, test = payload["set"], payload["test"]
        preds = await teacher_predicts(payload["lane"], s["exemplars"], test, "eval")
        result = metric_of(test, preds, m3)
        eid = f"{payload['lane']}|r{payload['round']}"
        return {"evals": {eid: {"id": eid, "lane": payload["lane"], "round": payload["round"], "set_id": s["id"],
                                **result, "predictions": preds}}}

    def record_node(state: M3State) -> dict[str, Any]:
        return {"rounds": {f"{lane.teacher}|r{state['round']}": round_row(state, lane) for lane in lanes_of(state)}}

    def route_next(state: M3State) -> str:
        return "start_round" if state["round"] < m3.rounds else END

    # ---- one refinement round ----------------------------------------------------
    def start_round(state: M3State) -> dict[str, Any]:
        return {"round": state["round"] + 1}

    def route_answers(state: M3State) -> list[Send] | str:
        r, done = state["round"], state.get("answers", {})
        batch = [state["train"][i] for i in plan_of(state).minibatch(r, m3.minibatch, m3.seed)]
        sends = []
        for lane in lanes_of(state):
            for set_id in state["beams"][lane.teacher]:
                for student in lane.students:
                    for p in batch:
                        aid = f"{set_id}|{student}|{p['id']}|r{r}"
                        if aid not in done:
                            sends.append(Send("answer", {"id": aid, "round": r, "lane": lane.teacher,
                                                         "set": state["sets"][set_id], "student": student,
                                                         "problem": p}))
        return sends or "pool"

    async def answer_node(task_: dict[str, Any]) -> dict[str, Any]:
        p, s = task_["problem"], task_["set"]
        out = await predict(resolve_classroom(classroom).as_student(task_["student"]), s["exemplars"], p, f"m3:answer:r{task_['round']}:{p['id']}")
        return {"answers": {task_["id"]: {"id": task_["id"], "round": task_["round"], "lane": task_["lane"],
                                          "set_id": s["id"], "student": task_["student"], "problem": p, **out}}}

    def pool_node(state: M3State) -> dict[str, Any]:
        return {}

    def failures_of(state: M3State, set_id: str) -> list[dict[str, Any]]:
        """Pooled failures on ``set_id`` this round, students interleaved (diverse first)."""
        r = state["round"]
        per_student: dict[str, list[dict[str, Any]]] = {}
        for a in state.get("answers", {}).values():
            if a["round"] == r and a["set_id"] == set_id and a["status"] == "ok" and not a["correct"]:
                per_student.setdefault(a["student"], []).append(a)
        queues = [sorted(v, key=lambda a: a["problem"]["id"]) for _, v in sorted(per_student.items())]
        out = []
        while any(queues):
            for q in queues:
                if q:
                    out.append(q.pop(0))
        return out

    def route_explain(state: M3State) -> list[Send] | str:
        r, done = state["round"], state.get("reasons", {})
        sends = []
        for lane in lanes_of(state):
            for rank, set_id in enumerate(state["beams"][lane.teacher]):
                failures = failures_of(state, set_id)[: m3.max_failures]
                if failures and f"{set_id}|r{r}|x0" not in done:
                    sends.append(Send("explain", {"round": r, "lane": lane.teacher, "set": state["sets"][set_id],
                                                  "rank": rank, "failures": failures}))
        return sends or "gather"

    async def explain_node(payload: dict[str, Any]) -> dict[str, Any]:
        s, r = payload["set"], payload["round"]
        shown = render_failures(payload["failures"], m3.failure_chars)
        prompt = render_prompt("explain", task="m3", exemplars=format_exemplars(s["exemplars"]), failures=shown)
        teacher = resolve_classroom(classroom).as_teacher(payload["lane"])
        try:
            replies: list[Reply] = await teacher.explain_failures(prompt, n=m3.reasons, key=f"m3:explain:r{r}")
        except (EndpointError, BudgetExhausted):
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a prompt over the context limit: no new sets this time
            return {"log": [{"round": r, "lane": payload["lane"], "event": "explain_failed",
                             "detail": f"{s['id']}: {type(exc).__name__}: {exc}"[:300]}]}
        reasons = {}
        for i, reply in enumerate(replies):
            rid = f"{s['id']}|r{r}|x{i}"
            reasons[rid] = {"id": rid, "round": r, "lane": payload["lane"], "set_id": s["id"], "index": i,
                            "rank": payload["rank"],
                            "text": reply.text.strip(), "failures": [f["id"] for f in payload["failures"]],
                            "failures_shown": shown}
        return {"reasons": reasons}

    def plan_write(state: M3State) -> dict[str, Any]:
        return {}

    def route_write(state: M3State) -> list[Send] | str:
        r = state["round"]
        sends = [
            Send("write", {"reason": reason, "set": state["sets"][reason["set_id"]], "choices": choices_of(state)})
            for reason in state.get("reasons", {}).values()
            if reason["round"] == r and _child_id(reason) not in state["sets"]
        ]
        return sends or "gather"

    async def write_node(payload: dict[str, Any]) -> dict[str, Any]:
        reason, parent, choices = payload["reason"], payload["set"], payload["choices"]
        prompt = render_prompt(
            "write", task="m3", exemplars=format_exemplars(parent["exemplars"]), failures=reason["failures_shown"],
            reason=reason["text"], k=m3.k, choices_hint=hint(choices),
        )
        written, attempts = await write_set(reason["lane"], prompt, m3.k, choices, f"write:{reason['id']}")
        record = {"id": _child_id(reason), "lane": reason["lane"], "round": reason["round"], "parent": parent["id"],
                  "reason": reason["id"], "attempts": attempts, "origin": "teacher"}
        if written is None:
            record.update(exemplars=parent["exemplars"], status="kept_previous", key=parent["key"])
            log = [{"round": reason["round"], "lane": reason["lane"], "event": "parse_failed",
                    "detail": f"{record['id']}: {attempts[-1]['error']}; kept the previous set {parent['id']}"}]
            return {"sets": {record["id"]: record}, "log": log}
        record.update(exemplars=written, status="new", key=set_key(written))
        return {"sets": {record["id"]: record}}

    def gather_node(state: M3State) -> dict[str, Any]:
        """Drop duplicates (of any earlier set of the lane, or of each other); the rest become candidates."""
        r, updates = state["round"], {}
        for lane in lanes_of(state):
            mine = [s for s in state["sets"].values() if s["lane"] == lane.teacher]
            known = {s["key"]: s["id"] for s in mine if s["round"] < r and s["status"] != "duplicate"}
            for s in sorted((s for s in mine if s["round"] == r and s["status"] == "new"), key=lambda s: s["id"]):
                if s["key"] in known:
                    updates[s["id"]] = {**s, "status": "duplicate", "duplicate_of": known[s["key"]]}
                else:
                    known[s["key"]] = s["id"]
                    updates[s["id"]] = {**s, "status": "candidate"}
        return {"sets": updates}

    builder = StateGraph(M3State, context_schema=Classroom, input_schema=M3Input)
    for node_name, fn in [
        ("init", init_node), ("score", score_node), ("select", select_node), ("evaluate", evaluate_node),
        ("record", record_node), ("start_round", start_round), ("answer", answer_node), ("pool", pool_node),
        ("explain", explain_node), ("plan_write", plan_write), ("write", write_node), ("gather", gather_node),
    ]:
        builder.add_node(node_name, fn)
    builder.add_edge(START, "init")
    builder.add_conditional_edges("init", route_scoring, ["score", "select"])
    builder.add_edge("score", "select")
    builder.add_conditional_edges("select", route_eval, ["evaluate", "record"])
    builder.add_edge("evaluate", "record")
    builder.add_conditional_edges("record", route_next, ["start_round", END])
    builder.add_conditional_edges("start_round", route_answers, ["answer", "pool"])
    builder.add_edge("answer", "pool")
    builder.add_conditional_edges("pool", route_explain, ["explain", "gather"])
    builder.add_edge("explain", "plan_write")
    builder.add_conditional_edges("plan_write", route_write, ["write", "gather"])
    builder.add_edge("write", "gather")
    builder.add_conditional_edges("gather", route_scoring, ["score", "select"])
    return builder.compile(checkpointer=checkpointer, name=name)


def from_config(cfg: RunConfig) -> CompiledStateGraph:
    """The M3 graph of a run config; its inputs are the task's train and test splits (:func:`inputs`)."""
    return m3_graph(cfg.m3)


def inputs(cfg: RunConfig) -> dict[str, Any]:
    """``{"train": [...], "test": [...]}`` for ``cfg.task`` (checked: K below the training set size)."""
    train, test = load_splits(cfg)
    check_sizes(cfg, train, test)
    return {"train": train, "test": test}


def plan(cfg: RunConfig, inputs: dict[str, Any]) -> Any:
    """The requests and tokens this graph will ask for, at most (``lbt m3 --dry-run``); see :mod:`lbt_agents.plan`."""
    from lbt_agents.plan import plan_m3

    return plan_m3(cfg, inputs["train"], inputs["test"])


def load_splits(cfg: RunConfig) -> tuple[list[Problem], list[Problem]]:
    """Training problems (``task.offset``/``task.limit`` apply) and test problems (``m3.test_limit``).

    A task with one split only (e.g. ``gsm8k_functional``) is cut in two seeded halves.
    """
    from lbt_agents.tasks import load_problems

    task = cfg.task
    try:
        train = load_problems(task.model_copy(update={"split": "train"}))
        test = load_problems(task.model_copy(update={"split": "test", "offset": 0, "limit": cfg.m3.test_limit}))
        return train, test
    except ConfigError as exc:
        if "split" not in str(exc):
            raise
    everything = load_problems(task.model_copy(update={"offset": 0, "limit": None}))
    order = list(range(len(everything)))
    Random(f"{cfg.m3.seed}:halves").shuffle(order)
    half = len(order) // 2
    test = [everything[i] for i in order[:half]][: cfg.m3.test_limit]
    train = [everything[i] for i in order[half:]][task.offset :]
    if task.limit is not None:
        train = train[: task.limit]
    return train, test


def check_sizes(cfg: RunConfig, train: Sequence[Problem], test: Sequence[Problem]) -> None:
    make_plan(len(train), cfg.m3)  # K larger than the training set: ConfigError
    if not test:
        raise ConfigError(f"task {cfg.task.name!r} has no test problems for M3's per-round metric")


def _child_id(reason: dict[str, Any]) -> str:
    return f"{reason['lane']}/r{reason['round']}/b{reason['rank']}x{reason['index']}"


def render_failures(failures: Sequence[dict[str, Any]], chars: int) -> str:
    """The failures block of the teacher's prompts (``prompts/m3/failure.md`` per failure)."""
    blocks = []
    for i, f in enumerate(failures, 1):
        text = " ".join(f["text"].split())
        excerpt = text if len(text) <= chars else text[:chars].rstrip() + " …"
        blocks.append(render_prompt(
            "failure", task="m3", index=i, student=f["student"], question=f["problem"]["question"].strip(),
            reply=excerpt or "(empty)", given=f["answer"] if f["answer"] is not None else "(none)",
            answer=f["problem"]["answer"],
        ).strip())
    return "\n\n".join(blocks)


def metric_of(problems: Sequence[Problem], preds: Sequence[dict[str, Any]], m3: M3Config) -> dict[str, Any]:
    """Accuracy, and F1 of the positive class for binary label tasks; ``metric``/``value`` name the headline."""
    correct = [bool(p["correct"]) for p in preds]
    out: dict[str, Any] = {"n": len(preds), "accuracy": sum(correct) / len(correct) if correct else 0.0, "f1": None}
    choices = list((problems[0].get("meta") or {}).get("choices") or []) if problems else []
    binary = bool(problems) and problems[0]["kind"] == "label" and len(choices) == 2
    if binary:
        from lbt_agents.grading.label import normalize_label

        positive = normalize_label(m3.positive_label or choices[0])
        tp = fp = fn = 0
        for problem, pred in zip(problems, preds):
            gold = normalize_label(problem["answer"]) == positive
            said = pred["answer"] is not None and normalize_label(pred["answer"]) == positive
            tp += gold and said
            fp += said and not gold
            fn += gold and not said
        out["f1"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        out["positive"] = m3.positive_label or choices[0]
    metric = m3.metric if m3.metric != "auto" else ("f1" if binary else "accuracy")
    if metric == "f1" and out["f1"] is None:
        raise ConfigError("m3.metric=f1 needs a binary label task")
    out["metric"], out["value"] = metric, out[metric]
    return out


def round_row(state: M3State, lane: Lane) -> dict[str, Any]:
    """One lane's summary of the current round (what tables and plots show)."""
    r = state["round"]
    sets, scores = state["sets"], state.get("scores", {})
    beam = state["beams"][lane.teacher]
    ev = state.get("evals", {}).get(f"{lane.teacher}|r{r}", {})
    answers = [a for a in state.get("answers", {}).values() if a["round"] == r and a["lane"] == lane.teacher]
    per_student: dict[str, float | None] = {}
    down = []
    for student in lane.students:
        mine = [a for a in answers if a["student"] == student]
        ok = [a for a in mine if a["status"] == "ok"]
        per_student[student] = sum(a["correct"] for a in ok) / len(ok) if ok else None
        if mine and not ok:
            down.append(student)
    ok_all = [a for a in answers if a["status"] == "ok"]
    new = [s for s in sets.values() if s["lane"] == lane.teacher and s["round"] == r and s["status"] != "init"]
    return {
        "round": r,
        "lane": lane.teacher,
        "students": list(lane.students),
        "best_set": beam[0],
        "best_exemplars": sets[beam[0]]["exemplars"],
        "best_score": scores.get(beam[0], {}).get("score"),
        "beam": [{"set_id": sid, "score": scores.get(sid, {}).get("score")} for sid in beam],
        "metric": ev.get("metric"),
        "test_value": ev.get("value"),
        "test_accuracy": ev.get("accuracy"),
        "test_f1": ev.get("f1"),
        "minibatch_accuracy": per_student,
        "pooled_accuracy": sum(a["correct"] for a in ok_all) / len(ok_all) if ok_all else None,
        "failures": sum(1 for a in ok_all if not a["correct"]),
        "reasons": sorted(k for k, v in state.get("reasons", {}).items() if v["round"] == r and v["lane"] == lane.teacher),
        "candidates": sum(s["status"] == "candidate" for s in new),
        "duplicates": sum(s["status"] == "duplicate" for s in new),
        "kept_previous": sum(s["status"] == "kept_previous" for s in new),
        "down": down,
        "errors": sum(a["status"] == "error" for a in answers),
    }
