"""M3: refine in-context exemplars from the pooled failures of diverse students.

Per teaching lane (a teacher and its students: the classroom's who-teaches-whom, see
:class:`lbt_agents.Classroom`)
and per round::

    start_round → answer (Send: beam set × student × minibatch problem) → pool
      → explain (Send: beam set with failures; ``reasons`` samples) → plan_write
      → write (Send: one new set per reason; parse retries) → gather (dedup)
      → score (Send: new set; teacher as predictor on the scoring sample)
      → select (beam) → evaluate (Send: best set; teacher on the test split) → record

Round 0 is the initial set (K training examples, class-balanced ones, or written by
the teacher), scored and evaluated the same way.  How prompts are written and read is
the prompt set's (``m3.prompt_set``, :mod:`lbt_agents.graphs.m3_prompts`); the
``paper`` profile's choices (random failure samples per explanation, dropped short
reasons, fresh scoring samples) are ``M3Config`` fields.  All lanes advance in lockstep and share
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
from lbt_agents.exemplars import Exemplar, ExemplarParseError, set_key
from lbt_agents.graphs.m3_prompts import M3Prompts, prompt_set
from lbt_agents.llm import Message, Reply


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

    def fresh_sample(self, round_: int, size: int, seed: int) -> list[int]:
        """A new random scoring sample for ``round_`` (``m3.score_sampling: fresh``), from the minibatch pool."""
        return sorted(Random(f"{seed}:score:{round_}:{size}").sample(list(self.pool), min(size, len(self.pool))))


def make_plan(n_train: int, m3: M3Config, labels: Sequence[str] | None = None) -> Plan:
    """Initial exemplars, scoring sample and minibatch pool (indices into train).

    ``m3.init: balanced`` needs the training ``labels``: K/2 random positives and K - K/2 random others,
    shuffled; then, as in the official code, minibatches and fresh scoring samples come from the whole split.
    """
    if m3.k >= n_train:
        raise ConfigError(
            f"m3.k={m3.k} exemplars need more training problems than that (the training split has {n_train}); "
            "lower m3.k or raise task.limit"
        )
    order = list(range(n_train))
    rng = Random(f"{m3.seed}:m3")
    rng.shuffle(order)
    if m3.init != "balanced":
        init, rest = order[: m3.k], order[m3.k :]
        return Plan(tuple(init), tuple(rest[: m3.score_sample]), tuple(rest))
    if labels is None or not m3.positive_label:
        raise ConfigError("m3.init=balanced needs a binary label task and m3.positive_label")
    from lbt_agents.grading.label import normalize_label

    positive = normalize_label(m3.positive_label)
    pos = [i for i in range(n_train) if normalize_label(labels[i]) == positive]
    neg = [i for i in range(n_train) if normalize_label(labels[i]) != positive]
    want = (m3.k // 2, m3.k - m3.k // 2)
    if len(pos) < want[0] or len(neg) < want[1]:
        raise ConfigError(f"m3.init=balanced: {want[0]} + {want[1]} exemplars need more training problems "
                          f"(the split has {len(pos)} {m3.positive_label!r} and {len(neg)} others)")
    init = rng.sample(pos, want[0]) + rng.sample(neg, want[1])
    rng.shuffle(init)
    chosen = set(init)
    rest = [i for i in order if i not in chosen]
    return Plan(tuple(init), tuple(rest[: m3.score_sample]), tuple(range(n_train)))


def m3_graph(
    m3: M3Config | None = None,
    *,
    classroom: ClassroomSource = None,
    checkpointer: Any = None,
    name: str = "m3_refinement",
) -> CompiledStateGraph:
    """Compile the M3 graph; every lane of the classroom (teacher and its students) refines its own sets."""
    m3 = m3 or M3Config()
    prompts: M3Prompts = prompt_set(m3.prompt_set)

    def lanes_of(state: M3State) -> list[Lane]:
        return [Lane(lane["teacher"], tuple(lane["students"])) for lane in state["lanes"]]

    def plan_of(state: M3State) -> Plan:
        return plan_for(state["train"], m3)

    def choices_of(state: M3State) -> list[str] | None:
        first = state["train"][0]
        return list((first.get("meta") or {}).get("choices") or []) or None if first["kind"] == "label" else None

    async def predict(agent: Agent, exemplars: Sequence[Exemplar], problem: Problem, key: str,
                      *, shared: bool = False, **overrides: Any) -> dict[str, Any]:
        """One graded answer.  ``shared``: identical requests to the same model and endpoint in flight at
        once (teachers of several lanes scoring the same set) are sent once."""
        try:
            reply = await prompts.predict(agent, exemplars, problem, key=key, coalesce=shared,
                                          **{**prompts.predictor_overrides(), **overrides})
        except BudgetExhausted:
            raise  # the run stops; this answer is asked again on resume
        except EndpointError as exc:
            return {"status": "down", "error": str(exc), "text": "", "answer": None, "correct": False}
        except Exception as exc:  # noqa: BLE001 - one bad request (e.g. too long) must not stop the round
            return {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300], "text": "",
                    "answer": None, "correct": False}
        verdict = prompts.grade(problem, reply) or await resolve_classroom(classroom).examiner.grade(problem, reply)
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

    async def write_set(teacher: str, messages: list[Message], k: int, choices: Sequence[str] | None,
                        key: str) -> tuple[list[Exemplar] | None, list[dict[str, Any]]]:
        """Ask for K exemplars; retry with the parse error; ``(None, attempts)`` if none parse."""
        agent = resolve_classroom(classroom).as_teacher(teacher)
        attempts: list[dict[str, Any]] = []
        for attempt in range((m3.max_parse_retries if prompts.retries else 0) + 1):
            try:
                [reply] = await agent.write(messages, key=f"m3:{key}:a{attempt}")
            except (EndpointError, BudgetExhausted):
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. a prompt over the context limit: no set this time
                attempts.append({"text": "", "error": f"request failed: {type(exc).__name__}: {exc}"[:300]})
                break
            try:
                exemplars = prompts.parse_set(reply.text, k, choices)
                attempts.append({"text": reply.text, "error": None})
                return exemplars, attempts
            except ExemplarParseError as exc:
                attempts.append({"text": reply.text, "error": str(exc)})
                retry = prompts.retry_message(str(exc), k, choices)
                messages = [*messages, {"role": "assistant", "content": reply.text}, {"role": "user", "content": retry}]
        return None, attempts

    # ---- round 0 -----------------------------------------------------------------
    async def init_node(state: M3State) -> dict[str, Any]:
        room = resolve_classroom(classroom)
        lanes = [lane for lane in room.lanes() if lane.students]
        if not lanes:
            raise ConfigError("M3 needs at least one teacher with students (classroom.edges)")
        train = state["train"]
        prompts.check(train)
        plan = plan_of(state)
        base = [prompts.exemplar_of(train[i]) for i in plan.init]
        choices = choices_of(state)

        async def one(lane: Lane) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            set_id = f"{lane.teacher}/r0/init"
            record = {"id": set_id, "lane": lane.teacher, "round": 0, "parent": None, "reason": None,
                      "exemplars": base, "status": "init", "origin": "train", "attempts": []}
            log: list[dict[str, Any]] = []
            if m3.init == "teacher":
                messages = prompts.init_messages(room.as_teacher(lane.teacher), base, train, m3.k, choices)
                written, attempts = await write_set(lane.teacher, messages, m3.k, choices, f"init:{lane.teacher}")
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
    def to_score(state: M3State, lane: str) -> list[str]:
        """Ids of the sets of ``lane`` ranked this round: its new ones (and, with fresh samples, its beam too)."""
        r = state["round"]
        new = [s["id"] for s in state["sets"].values()
               if s["lane"] == lane and s["round"] == r and s["status"] in ("init", "candidate")]
        beam = list(state["beams"].get(lane, [])) if m3.score_sampling == "fresh" and r > 0 else []
        return list(dict.fromkeys(beam + new))

    def route_scoring(state: M3State) -> list[Send] | str:
        r, train = state["round"], state["train"]
        scored = state.get("scores", {})
        plan = plan_of(state)
        sends = []
        for lane in sorted({s["lane"] for s in state["sets"].values()}):
            ids = to_score(state, lane)
            if m3.score_sampling == "fresh":
                size = m3.score_budget // len(ids) if m3.score_budget else m3.score_sample
                sample = plan.fresh_sample(r, size, m3.seed) if len(ids) > 1 else []  # one set: nothing to rank
            else:
                sample = list(plan.score_sample)
            for sid in ids:
                if score_id(sid, r, m3) not in scored:
                    sends.append(Send("score", {"set": state["sets"][sid], "round": r,
                                                "problems": [train[i] for i in sample]}))
        return sends or "select"

    async def score_node(payload: dict[str, Any]) -> dict[str, Any]:
        s, problems = payload["set"], payload["problems"]
        sid = score_id(s["id"], payload["round"], m3)
        if not problems:
            return {"scores": {sid: {"set_id": s["id"], "round": payload["round"], "score": 1.0, "n": 0,
                                     "predictions": []}}}
        preds = await teacher_predicts(s["lane"], s["exemplars"], problems, "score")
        correct = sum(p["correct"] for p in preds)
        return {"scores": {sid: {"set_id": s["id"], "round": payload["round"], "score": correct / len(preds),
                                 "n": len(preds), "predictions": preds}}}

    def select_node(state: M3State) -> dict[str, Any]:
        r, scores = state["round"], state.get("scores", {})
        beams = {}
        for lane in lanes_of(state):
            incumbents = [] if r == 0 else list(state["beams"][lane.teacher])
            new = [s["id"] for s in state["sets"].values()
                   if s["lane"] == lane.teacher and s["round"] == r and s["status"] in ("init", "candidate")]
            pool = [sid for sid in dict.fromkeys(incumbents + new) if score_id(sid, r, m3) in scores]
            ranked = prompts.ranked([state["sets"][sid] for sid in pool],
                                    [scores[score_id(sid, r, m3)]["score"] for sid in pool])
            beams[lane.teacher] = [s["id"] for s in ranked][: m3.beam] or incumbents
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
        return {"rounds": {f"{lane.teacher}|r{state['round']}": round_row(state, lane, m3) for lane in lanes_of(state)}}

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
        out = await predict(resolve_classroom(classroom).as_student(task_["student"]), s["exemplars"], p,
                            f"m3:answer:r{task_['round']}:{p['id']}")
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
        """One explanation request per beam set with failures ('first'), or ``reasons`` of them, each over its
        own random sample of the pooled failures ('random')."""
        r, done = state["round"], state.get("reasons", {})
        asked = {(x["set_id"], x.get("gradient")) for x in done.values() if x["round"] == r}
        sends = []
        for lane in lanes_of(state):
            for rank, set_id in enumerate(state["beams"][lane.teacher]):
                pooled = failures_of(state, set_id)
                if not pooled:
                    continue
                payload = {"round": r, "lane": lane.teacher, "set": state["sets"][set_id], "rank": rank,
                           "probe": state["train"][:1]}
                if m3.failure_sampling == "first":
                    if f"{set_id}|r{r}|x0" not in done:
                        sends.append(Send("explain", {**payload, "gradient": None, "failures": pooled[: m3.max_failures]}))
                    continue
                for g in range(m3.reasons):
                    if (set_id, g) in asked:
                        continue
                    rng = Random(f"{m3.seed}:failures:{r}:{set_id}:{g}")
                    sample = rng.sample(pooled, min(m3.max_failures, len(pooled)))
                    sends.append(Send("explain", {**payload, "gradient": g, "failures": sample}))
        return sends or "gather"

    async def explain_node(payload: dict[str, Any]) -> dict[str, Any]:
        s, r, g = payload["set"], payload["round"], payload["gradient"]
        shown = prompts.failures(payload["failures"], m3.failure_chars)
        teacher = resolve_classroom(classroom).as_teacher(payload["lane"])
        messages = prompts.explain_messages(teacher, s["exemplars"], shown, payload["probe"], m3.k)
        n, key = (m3.reasons, f"m3:explain:r{r}") if g is None else (1, f"m3:explain:r{r}:g{g}")
        try:
            replies: list[Reply] = await teacher.write(messages, n=n, key=key)
        except (EndpointError, BudgetExhausted):
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a prompt over the context limit: no new sets this time
            return {"log": [{"round": r, "lane": payload["lane"], "event": "explain_failed",
                             "detail": f"{s['id']}: {type(exc).__name__}: {exc}"[:300]}]}
        base = {"round": r, "lane": payload["lane"], "set_id": s["id"], "rank": payload["rank"], "gradient": g,
                "failures": [f["id"] for f in payload["failures"]], "failures_shown": shown}
        reasons = {}
        for i, reply in enumerate(replies):
            for j, text in enumerate(prompts.reasons(reply.text)):
                tag = f"g{g}x{j}" if g is not None else (f"x{i}" if j == 0 else f"x{i}_{j}")
                short = m3.min_reason_words and len(text.split()) <= m3.min_reason_words
                reasons[f"{s['id']}|r{r}|{tag}"] = {
                    **base, "id": f"{s['id']}|r{r}|{tag}", "index": i, "tag": tag, "text": text,
                    "dropped": f"{m3.min_reason_words} words or fewer" if short else None}
        if not reasons:  # recorded, so that a resumed run does not ask again
            rid = f"{s['id']}|r{r}|" + (f"g{g}" if g is not None else "x0")
            reasons[rid] = {**base, "id": rid, "index": 0, "tag": rid.rsplit("|", 1)[1], "text": "",
                            "dropped": "no reason in the reply"}
        return {"reasons": reasons}

    def plan_write(state: M3State) -> dict[str, Any]:
        return {}

    def route_write(state: M3State) -> list[Send] | str:
        r = state["round"]
        per_set: dict[str, list[dict[str, Any]]] = {}
        for reason in sorted(state.get("reasons", {}).values(), key=lambda x: x["id"]):
            if reason["round"] == r and not reason.get("dropped"):
                per_set.setdefault(reason["set_id"], []).append(reason)
        sends = []
        for set_id, reasons in per_set.items():
            if m3.max_new_sets is not None and len(reasons) > m3.max_new_sets:
                reasons = Random(f"{m3.seed}:expand:{r}:{set_id}").sample(reasons, m3.max_new_sets)
            sends += [Send("write", {"reason": reason, "set": state["sets"][set_id], "choices": choices_of(state),
                                     "probe": state["train"][:1]})
                      for reason in reasons if _child_id(reason) not in state["sets"]]
        return sends or "gather"

    async def write_node(payload: dict[str, Any]) -> dict[str, Any]:
        reason, parent, choices = payload["reason"], payload["set"], payload["choices"]
        teacher = resolve_classroom(classroom).as_teacher(reason["lane"])
        messages = prompts.write_messages(teacher, parent["exemplars"], reason["failures_shown"], reason["text"],
                                          payload["probe"], m3.k, choices)
        written, attempts = await write_set(reason["lane"], messages, m3.k, choices, f"write:{reason['id']}")
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
    prompt_set(cfg.m3.prompt_set).check(train)
    plan_for(train, cfg.m3)  # K larger than the training set: ConfigError
    if not test:
        raise ConfigError(f"task {cfg.task.name!r} has no test problems for M3's per-round metric")


def plan_for(train: Sequence[Problem], m3: M3Config) -> Plan:
    """:func:`make_plan` for these training problems (their labels, for a balanced initial set)."""
    return make_plan(len(train), m3, [str(p["answer"]) for p in train] if m3.init == "balanced" else None)


def score_id(set_id: str, round_: int, m3: M3Config) -> str:
    """Where a set's score is kept: one score per set, or per set and round with fresh scoring samples."""
    return f"{set_id}@r{round_}" if m3.score_sampling == "fresh" else set_id


def _child_id(reason: dict[str, Any]) -> str:
    return f"{reason['lane']}/r{reason['round']}/b{reason['rank']}{reason.get('tag') or 'x' + str(reason['index'])}"


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


def round_row(state: M3State, lane: Lane, m3: M3Config | None = None) -> dict[str, Any]:
    """One lane's summary of the current round (what tables and plots show)."""
    r, m3 = state["round"], m3 or M3Config()
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
        "best_score": scores.get(score_id(beam[0], r, m3), {}).get("score"),
        "beam": [{"set_id": sid, "score": scores.get(score_id(sid, r, m3), {}).get("score")} for sid in beam],
        "metric": ev.get("metric"),
        "test_value": ev.get("value"),
        "test_accuracy": ev.get("accuracy"),
        "test_f1": ev.get("f1"),
        "minibatch_accuracy": per_student,
        "pooled_accuracy": sum(a["correct"] for a in ok_all) / len(ok_all) if ok_all else None,
        "failures": sum(1 for a in ok_all if not a["correct"]),
        "reasons": sorted(k for k, v in state.get("reasons", {}).items()
                          if v["round"] == r and v["lane"] == lane.teacher and not v.get("dropped")),
        "reasons_dropped": sum(1 for v in state.get("reasons", {}).values()
                               if v["round"] == r and v["lane"] == lane.teacher and v.get("dropped")),
        "candidates": sum(s["status"] == "candidate" for s in new),
        "duplicates": sum(s["status"] == "duplicate" for s in new),
        "kept_previous": sum(s["status"] == "kept_previous" for s in new),
        "down": down,
        "errors": sum(a["status"] == "error" for a in answers),
    }
