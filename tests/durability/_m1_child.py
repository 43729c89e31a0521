"""An M1 run on a scripted classroom, with the call cache off, in a process of its own (to be killed).

Usage: python _m1_child.py OUT [--resume] [--block-student-after N] [--block-teacher-except TP_ID] [--delay-s S]
                            [--max-concurrency N]

Every request the models get is logged to ``OUT/requests.log`` (``asked``, then ``answered``), one JSON
line each, flushed at once, so a parent can count what was asked before and after a kill.  A student
reply carries its request's key (``[key]``), so an exam record in the checkpoint names its request.
``--block-student-after N`` answers N student requests and then blocks every later one forever (the
parent kills the process); ``--block-teacher-except TP`` teaches only that TP and blocks the others
(with ``--max-concurrency 1`` the TPs are taught in order, so the first one finishes).
At the end the M1 results go to ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
from pathlib import Path

from lbt_agents.config import AgentConfig, ClassroomConfig, M1Config, RunConfig, Sampling
from lbt_agents.testing import ScriptedChatModel
from lbt_agents.types import Problem, TeachingItem

RUN_ID = "t"
TPS, EPS, PAIRS, STUDENTS = 3, 4, 4, 2
TEACHER_CALLS = TPS * (PAIRS + 1)  # samples + greedy per TP
EXAMS = TPS * PAIRS * EPS * STUDENTS


def _problem(pid: str, a: int, b: int) -> Problem:
    return Problem(id=pid, question=f"What is {a} + {b}?", answer=str(a + b), kind="math")


ITEMS: list[TeachingItem] = [
    TeachingItem(tp=_problem(f"tp{t}", 10 * t + 1, 10 * t + 2),
                 eps=[_problem(f"tp{t}/ep{e}", 100 + 10 * t + e, e + 1) for e in range(EPS)])
    for t in range(TPS)
]


def _numbers(text: str) -> tuple[int, int]:
    a, b = map(int, re.findall(r"\d+", text)[:2])
    return a, b


def run_config(out: Path, max_concurrency: int = 4) -> RunConfig:
    return RunConfig(
        run_id=RUN_ID, output_dir=out, task={"name": "gsm8k", "limit": TPS}, max_concurrency=max_concurrency,
        executor={"max_tps_in_flight": min(TPS, max_concurrency)},  # one request at a time: one TP at a time
        cache={"enabled": False}, m1=M1Config(pairs_per_tp=PAIRS),
        classroom=ClassroomConfig(
            teacher=AgentConfig(name="teacher", role="teacher", sampling=Sampling(temperature=0.8, n=PAIRS, seed=0)),
            students=[AgentConfig(name=f"s{i}", sampling=Sampling(temperature=0.0)) for i in range(STUDENTS)],
        ),
    )


class Scripts:
    """The classroom's replies, the request log and the blocking rules."""

    def __init__(self, log: Path, block_student_after: int | None = None, teach_only: str | None = None,
                 delay_s: float = 0.0, fail_student_after: int | None = None) -> None:
        self.log = log.open("a")
        self.lock = threading.Lock()
        self.student_asks = 0
        self.block_student_after = block_student_after
        self.fail_student_after = fail_student_after
        self.teach_only = teach_only
        self.delay_s = delay_s

    def note(self, **event: object) -> None:
        with self.lock:
            self.log.write(json.dumps(event) + "\n")
            self.log.flush()

    def teacher(self, messages: list[dict[str, str]], params: dict[str, object]) -> str:
        a, b = _numbers(messages[-1]["content"])
        tp = next(it["tp"]["id"] for it in ITEMS if it["tp"]["question"] in messages[-1]["content"])
        key = f"teacher:{tp}:{params.get('seed')}:{params.get('temperature')}"
        self.note(who="teacher", key=key, event="asked")
        if self.teach_only is not None and tp != self.teach_only:
            threading.Event().wait()  # never answers: the parent kills the process
        seed = int(params.get("seed") or 0)
        good = params.get("temperature") != 0.0 and seed % 3 == 0
        reply = f"A {'good' if good else 'bad'} method (take {seed}). [[Final Answer]]: {a + b if good else a + b + 1}"
        self.note(who="teacher", key=key, event="answered")
        return reply

    def student(self, name: str):  # type: ignore[no-untyped-def]
        def reply(messages: list[dict[str, str]]) -> str:
            key = hashlib.sha1(f"{name}\0{messages[-2]['content']}\0{messages[-1]['content']}".encode()).hexdigest()[:16]
            with self.lock:
                self.student_asks += 1
                blocked = self.block_student_after is not None and self.student_asks > self.block_student_after
                failed = self.fail_student_after is not None and self.student_asks > self.fail_student_after
            self.note(who=name, key=key, event="asked")
            if failed:
                raise ValueError("the student crashed")
            if blocked:
                threading.Event().wait()  # never answers: the parent kills the process
            if self.delay_s:
                time.sleep(self.delay_s)
            a, b = _numbers(messages[-1]["content"])
            right = "good method" in messages[-2]["content"] or (a + b + len(name)) % 3 == 0
            self.note(who=name, key=key, event="answered")
            return f"[{key}] Following the example. [[Final Answer]]: {a + b if right else a + b + 7}"

        return reply

    def models(self) -> dict[str, list[ScriptedChatModel]]:
        out = {"teacher": [ScriptedChatModel(respond=self.teacher)]}
        for i in range(STUDENTS):
            out[f"s{i}"] = [ScriptedChatModel(respond=self.student(f"s{i}"))]
        return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--block-student-after", type=int)
    parser.add_argument("--block-teacher-except")
    parser.add_argument("--delay-s", type=float, default=0.0)
    parser.add_argument("--max-concurrency", type=int, default=4)
    args = parser.parse_args()

    import lbt_agents.tasks
    from lbt_agents.m1 import run_m1

    lbt_agents.tasks.load_task = lambda cfg: ITEMS  # the runner loads the task through this module
    scripts = Scripts(args.out / "requests.log", args.block_student_after, args.block_teacher_except, args.delay_s)
    result = run_m1(run_config(args.out, args.max_concurrency), resume=RUN_ID if args.resume else None, models=scripts.models(),
                    progress=False)
    (args.out / "results.json").write_text(json.dumps(result.results, sort_keys=True))


if __name__ == "__main__":
    main()
