"""The worked examples of docs/compose.md, offline with scripted models."""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

from lbt_agents import AgentConfig, Classroom, ClassroomConfig, Sampling, ScriptedChatModel
from tests.graphs.test_m1_scoring import ITEMS, teacher_reply

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from best_student_teaches import best_student_teaches  # noqa: E402
from reward_node import drafting_agent  # noqa: E402


def numbers(text: str) -> tuple[int, int]:
    a, b = map(int, re.findall(r"\d+", text)[:2])
    return a, b


def persona_student(skill: str):
    """Answers right after a good example when ``skill`` says so; teaches well when it learned well."""

    def respond(messages, params) -> str:
        a, b = numbers(messages[-1]["content"])
        if len(messages) == 2:  # asked to teach (system + problem)
            return f"A good method: add the numbers. [[Final Answer]]: {a + b}" if skill == "careful" else \
                f"A bad method: add and add one. [[Final Answer]]: {a + b + 1}"
        good = "good method" in messages[-2]["content"]
        right = {"careful": good, "hasty": False, "skeptic": good and (a + b) % 2 == 0, "newcomer": good}[skill]
        return f"[[Final Answer]]: {a + b if right else a + b + 7}"

    return respond


async def test_a_the_student_who_learned_best_teaches_a_fourth() -> None:
    names = ["careful", "hasty", "skeptic", "newcomer"]
    cfg = ClassroomConfig(
        teacher=AgentConfig(name="teacher", role="teacher", sampling=Sampling(temperature=0.8, n=4, seed=0)),
        students=[AgentConfig(name=n, persona=n if n != "newcomer" else None) for n in names],
    )
    models = {"teacher": ScriptedChatModel(respond=teacher_reply)}
    models |= {n: ScriptedChatModel(respond=persona_student(n)) for n in names}
    out = await best_student_teaches(Classroom.from_config(cfg, models=models), "newcomer", ITEMS)

    assert out["best"] == "careful"
    assert out["accuracy"]["careful"] > out["accuracy"]["skeptic"] > out["accuracy"]["hasty"] == 0.0
    assert not any(p["exams"] and p["exams"][0]["student"] == "newcomer" for r in out["taught"].values()
                   for p in r["pairs"])
    # The careful student wrote the newcomer's examples (4 per TP), and the newcomer learned from them.
    taught_by_careful = [c for c in models["careful"].calls if len(c["messages"]) == 2]
    assert len(taught_by_careful) == 2 * 4
    for result in out["peer"].values():
        assert all(p["lbt"] == 1.0 and p["per_student"] == {"newcomer": 1.0} for p in result["pairs"])


async def test_b_the_reward_node_keeps_the_draft_students_learn_from() -> None:
    takes = itertools.count()

    def drafter(messages) -> str:
        a, b = numbers(messages[-1]["content"])
        if next(takes) % 3 == 1:
            return f"A good method: add the numbers. [[Final Answer]]: {a + b}"
        return f"A bad method: add and add one. [[Final Answer]]: {a + b + 1}"

    def student(messages) -> str:
        a, b = numbers(messages[-1]["content"])
        return f"[[Final Answer]]: {a + b if 'good method' in messages[-2]['content'] else 0}"

    cfg = ClassroomConfig(students=[AgentConfig(name="s0"), AgentConfig(name="s1")])
    room = Classroom.from_config(cfg, models={"teacher": ScriptedChatModel(respond=str),
                                              "s0": ScriptedChatModel(respond=student),
                                              "s1": ScriptedChatModel(respond=student)})
    app = drafting_agent(ScriptedChatModel(respond=drafter), n=4)
    out = await app.ainvoke({"problem": ITEMS[0]["tp"], "eps": ITEMS[0]["eps"]}, context=room)
    assert len(out["drafts"]) == 4 and out["lbt_score"] == [0.0, 1.0, 0.0, 0.0]
    assert out["best"].startswith("A good method")


def test_each_example_is_at_most_40_lines_of_user_code() -> None:
    for name in ("best_student_teaches.py", "reward_node.py"):
        lines = (Path(__file__).resolve().parents[2] / "examples" / name).read_text().splitlines()
        code = [ln for ln in lines if ln.strip() and not ln.strip().startswith("#")]
        assert len(code) <= 40, (name, len(code))
