"""What a run will ask of its models, before it starts: ``lbt m1 --dry-run`` and the progress display's ETA.

A :class:`Plan` counts the requests of each phase and agent and estimates their tokens from the
prompts the agents would send (built by the agents' own prompt code from the task's real
problems): prompt tokens ≈ characters / 4 (+4 per message), no tokenizer is loaded; a completion
counts as its agent's ``max_tokens`` (an upper bound), and so does a teacher's rationale where a
student prompt holds one that is not written yet.  Building a plan calls no model.

A graph module declares its plan with a ``plan(cfg, inputs) -> Plan`` function beside ``inputs``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from lbt_agents.config import AgentConfig, RunConfig

if TYPE_CHECKING:
    from lbt_agents.llm import ChatAgent, Message
    from lbt_agents.types import Problem, TeachingItem

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
ESTIMATE = "prompt tokens ≈ characters/4 of the prompts the agents would send; completions at most max_tokens"


def estimate_tokens(messages: Sequence[Message]) -> int:
    """Prompt tokens of a chat request, estimated as characters / 4 plus 4 per message."""
    return sum(math.ceil(len(m["content"]) / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE for m in messages)


@dataclass
class Step:
    """The requests of one phase by one agent."""

    phase: str
    agent: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, requests: int, prompt_tokens: int, completion_tokens: int) -> None:
        self.requests += requests
        self.prompt_tokens += requests * prompt_tokens
        self.completion_tokens += requests * completion_tokens


@dataclass
class Plan:
    """Planned requests and tokens per phase and agent; ``upper_bound``: why the run may need fewer."""

    graph: str
    about: str = ""
    upper_bound: str | None = None
    steps: list[Step] = field(default_factory=list)

    def step(self, phase: str, agent: str) -> Step:
        for s in self.steps:
            if s.phase == phase and s.agent == agent:
                return s
        self.steps.append(Step(phase, agent))
        return self.steps[-1]

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.steps)

    @property
    def tokens(self) -> int:
        return sum(s.prompt_tokens + s.completion_tokens for s in self.steps)

    def per_agent(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for s in self.steps:
            a = out.setdefault(s.agent, {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0})
            a["requests"] += s.requests
            a["prompt_tokens"] += s.prompt_tokens
            a["completion_tokens"] += s.completion_tokens
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"graph": self.graph, "about": self.about, "upper_bound": self.upper_bound,
                "requests": self.requests, "tokens": self.tokens, "per_agent": self.per_agent(),
                "steps": [vars(s) for s in self.steps]}

    def table(self) -> str:
        """The plan as Markdown: one row per phase and agent, totals per agent and overall."""
        lines = [f"# Plan: {self.graph}" + (f", {self.about}" if self.about else ""), ""]
        if self.upper_bound:
            lines += [f"Upper bound: {self.upper_bound}.", ""]
        lines += ["| phase | agent | requests | prompt tokens (est.) | completion tokens (at most) |",
                  "|---|---|---|---|---|"]
        lines += [f"| {s.phase} | {s.agent} | {s.requests} | {s.prompt_tokens} | {s.completion_tokens} |"
                  for s in self.steps]
        for name, a in self.per_agent().items():
            if sum(s.agent == name for s in self.steps) < 2:
                continue  # its one row says it all
            lines.append(f"| all | {name} | {a['requests']} | {a['prompt_tokens']} | {a['completion_tokens']} |")
        lines.append(f"| **total** | | **{self.requests}** | {sum(s.prompt_tokens for s in self.steps)} | "
                     f"{sum(s.completion_tokens for s in self.steps)} |")
        return "\n".join(lines + ["", f"Tokens: {ESTIMATE}."]) + "\n"


@dataclass(frozen=True)
class _Offline:
    """An agent's config standing in for its ChatAgent: the agents build their prompts, nothing is sent."""

    cfg: AgentConfig

    @property
    def name(self) -> str:
        return self.cfg.name


def _offline(cfg: AgentConfig) -> ChatAgent:
    return cast("ChatAgent", _Offline(cfg))


def _first_students(cfg: RunConfig) -> list[AgentConfig]:
    from lbt_agents.classroom import who_teaches_whom

    graph = who_teaches_whom(cfg.classroom)
    agents = {a.name: a for a in cfg.classroom.agents()}
    return [agents[n] for n in graph.successors(cfg.classroom.teacher.name)]


def m1_requests(cfg: RunConfig, items: Sequence[TeachingItem], *, greedy: bool | None = None,
                per_sample: bool = False) -> int:
    """M1's planned requests (teaching and every exam), without the token estimate; ``per_sample``: the
    teacher's samples go one request each (chat models given with ``models=``), else one request with n."""
    greedy = cfg.m1.greedy_baseline if greedy is None else greedy
    students = len(_first_students(cfg))
    total = 0
    for item in items:
        pairs = len(item["rationales"]) if "rationales" in item else cfg.m1.pairs_per_tp
        total += 0 if "rationales" in item else (pairs if per_sample else 1) + greedy
        total += pairs * len(item.get("eps") or []) * cfg.m1.reps_per_ep * students  # bad items: intake says why
    return total


def plan_m1(cfg: RunConfig, items: Sequence[TeachingItem], *, greedy: bool | None = None,
            graph: str = "m1_scoring") -> Plan:
    """M1's requests: the teacher's TR-TA pairs (and greedy pair) per TP, then every exam."""
    from lbt_agents.agents import Student, Teacher

    greedy = cfg.m1.greedy_baseline if greedy is None else greedy
    task, tcfg = cfg.task.name, cfg.classroom.teacher
    prompts = cfg.classroom.prompts
    teacher = Teacher(_offline(tcfg), task=task, prompts=prompts)
    students = [Student(_offline(s), task=task, prompts=prompts) for s in _first_students(cfg)]
    eps = len(items[0]["eps"]) if items else 0
    plan = Plan(graph, f"{len(items)} TPs × {cfg.m1.pairs_per_tp} TR-TA pairs × {eps} EPs × "
                       f"{cfg.m1.reps_per_ep} reps × {len(students)} students")
    notes = ["TR-TA pairs without an answer take no exams"]
    if cfg.m1.adaptive.enabled:
        notes.insert(0, "adaptive M1 takes fewer exams (unanimous TPs, halving): this is the full plan")
    plan.upper_bound = "; ".join(notes)
    teach, exams = plan.step("teach", tcfg.name), {s.name: plan.step("exam", s.name) for s in students}
    rationale = tcfg.sampling.max_tokens  # a rationale not written yet: at most the teacher's max_tokens
    for item in items:
        tp = item["tp"]
        given = item.get("rationales")
        if given is None:
            asked = estimate_tokens(teacher.messages(tp))  # one request with n: the prompt once
            teach.add(1, asked, cfg.m1.pairs_per_tp * tcfg.sampling.max_tokens)
            teach.add(greedy, asked, tcfg.sampling.max_tokens)
        for ep in item["eps"]:
            for student in students:
                done = student.chat.cfg.sampling.max_tokens
                if given is None:  # every pair's prompt: the same, with a rationale of at most max_tokens
                    prompt = estimate_tokens(student.messages(tp, "", ep)) + rationale
                    exams[student.name].add(cfg.m1.pairs_per_tp * cfg.m1.reps_per_ep, prompt, done)
                    continue
                for text in given:
                    exams[student.name].add(cfg.m1.reps_per_ep, estimate_tokens(student.messages(tp, str(text), ep)), done)
    return plan


def plan_m3(cfg: RunConfig, train: Sequence[Problem], test: Sequence[Problem]) -> Plan:
    """M3's requests per lane and round, with every beam set failing somewhere (the most work)."""
    from lbt_agents.agents import Teacher
    from lbt_agents.classroom import who_teaches_whom, lanes
    from lbt_agents.graphs.m3_prompts import prompt_set
    from lbt_agents.graphs.m3_refinement import plan_for

    m3, task = cfg.m3, cfg.task.name
    prompts = prompt_set(m3.prompt_set)
    split = plan_for(train, m3)
    agents = {a.name: a for a in cfg.classroom.agents()}
    base = [prompts.exemplar_of(train[i]) for i in split.init]
    scoring = [train[i] for i in split.score_sample]
    teaching = [lane for lane in lanes(who_teaches_whom(cfg.classroom)) if lane.students]
    plan = Plan("m3_refinement", f"{len(teaching)} lanes × {m3.rounds} rounds, {len(train)} training and "
                                 f"{len(test)} test problems, k={m3.k}, beam={m3.beam}")
    plan.upper_bound = ("every beam set has failures, every reply needs all its parse retries and no set is a "
                        "duplicate; identical predictions of several lanes are sent once")

    def predictions(agent: AgentConfig, problems: Sequence[Problem], max_tokens: int) -> tuple[int, int]:
        prompt = sum(estimate_tokens(prompts.predictor_messages(base, p, task=task, persona=agent.persona))
                     for p in problems)
        return prompt, min(max_tokens, prompts.predictor_overrides().get("max_tokens", max_tokens)) * len(problems)

    def fresh(sets: int) -> list[Problem]:  # a fresh scoring sample for this many sets (one set: not scored)
        size = m3.score_budget // sets if m3.score_budget else m3.score_sample
        return [train[i] for i in split.fresh_sample(0, size, m3.seed)] if sets > 1 else []

    for lane in teaching:
        tcfg = agents[lane.teacher]
        teacher = Teacher(_offline(tcfg), task=task)
        reply = tcfg.sampling.max_tokens
        predict = m3.predict_max_tokens or reply
        shown = prompts.failures([{"student": s, "problem": p, "text": "x" * m3.failure_chars, "answer": None}
                                  for s, p in zip(lane.students * m3.max_failures, scoring or train)][: m3.max_failures],
                                 m3.failure_chars)
        explain = prompts.explain_messages(teacher, base, shown, train[:1], m3.k)
        write = prompts.write_messages(teacher, base, shown, "x" * (CHARS_PER_TOKEN * reply), train[:1], m3.k, None)
        tries = 1 + (m3.max_parse_retries if prompts.retries else 0)
        retry_growth = reply * (tries - 1) // 2  # each retry adds the failed reply and a short note
        eval_prompt, eval_done = predictions(tcfg, test, predict)

        def add(phase: str, agent: str, times: int, problems: int, prompt: int, done: int) -> None:
            s = plan.step(phase, agent)  # ``times`` sets, each predicting ``problems`` problems
            s.requests += times * problems
            s.prompt_tokens += times * prompt
            s.completion_tokens += times * done

        if m3.init == "teacher":
            init = prompts.init_messages(teacher, base, train, m3.k, None)
            plan.step("write", lane.teacher).add(tries, estimate_tokens(init) + retry_growth, reply)
        fixed = m3.score_sampling == "fixed"
        sample = scoring if fixed else fresh(1)
        add("score", lane.teacher, 1, len(sample), *predictions(tcfg, sample, predict))
        add("evaluate", lane.teacher, 1, len(test), eval_prompt, eval_done)
        beam = 1
        for r in range(1, m3.rounds + 1):
            batch = [train[i] for i in split.minibatch(r, m3.minibatch, m3.seed)]
            for name in lane.students:
                scfg = agents[name]
                add("answer", name, beam, len(batch), *predictions(scfg, batch, scfg.sampling.max_tokens))
            new = beam * m3.reasons if m3.max_new_sets is None else beam * min(m3.reasons, m3.max_new_sets)
            plan.step("explain", lane.teacher).add(beam * m3.reasons, estimate_tokens(explain), reply)
            plan.step("write", lane.teacher).add(new * tries, estimate_tokens(write) + retry_growth, reply)
            scored, sample = (new, scoring) if fixed else (new + beam, fresh(new + beam))
            add("score", lane.teacher, scored, len(sample), *predictions(tcfg, sample, predict))
            add("evaluate", lane.teacher, 1, len(test), eval_prompt, eval_done)
            beam = min(m3.beam, beam + new)
    if m3.repeats > 1:  # each repeat is a whole run with its own seed
        plan.about += f", × {m3.repeats} repeats"
        for step in plan.steps:
            step.requests, step.prompt_tokens, step.completion_tokens = (
                m3.repeats * step.requests, m3.repeats * step.prompt_tokens, m3.repeats * step.completion_tokens)
    return plan
