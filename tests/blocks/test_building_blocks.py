"""The building blocks alone: node factories, rationales from outside, two classrooms, bad input."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from lbt_agents import (
    AgentConfig,
    Classroom,
    ClassroomConfig,
    ConfigError,
    M1Config,
    ScriptedChatModel,
    TeachingItem,
    exam_node,
    lbt_reward_node,
    m1_graph,
    score_rationales,
    teach_node,
)
from tests.graphs.test_m1_scoring import ITEMS, classroom, models, student_reply

GOOD = "A good method: add the numbers. [[Final Answer]]: 5"
BAD = "A bad method: add and add one. [[Final Answer]]: 6"


def room(students: int = 1, **kw) -> Classroom:
    return Classroom.from_config(classroom(students=students), models=models(students=students), **kw)


async def test_score_rationales_ranks_what_students_learn_from() -> None:
    tp, eps = ITEMS[0]["tp"], ITEMS[0]["eps"]
    scored = await score_rationales(tp, [BAD, GOOD], eps, room(students=2))
    assert [p["lbt"] for p in scored] == [0.0, 1.0]
    assert [p["answer"] for p in scored] == ["6", "5"] and scored[1]["correct"] is True
    assert scored[1]["per_student"] == {"s0": 1.0, "s1": 1.0}
    assert len(scored[0]["exams"]) == len(eps) * 2


async def test_m1_scores_given_rationales_without_teaching() -> None:
    m = models(students=1)
    item = TeachingItem(tp=ITEMS[0]["tp"], eps=ITEMS[0]["eps"], rationales=[BAD, BAD, GOOD])
    out = await m1_graph().ainvoke({"items": [item]}, context=Classroom.from_config(classroom(students=1), models=m))
    assert m["teacher"][0].calls == []  # no teaching: the rationales came from outside
    result = out["results"]["tp1"]
    assert [p["lbt"] for p in result["pairs"]] == [0.0, 0.0, 1.0]
    assert result["selections"]["sc"]["answer"] == "6" and result["selections"]["max"]["answer"] == "5"
    assert "greedy" not in result["selections"]


async def test_node_factories_run_alone() -> None:
    classroom_ = room()
    teach = teach_node(M1Config(pairs_per_tp=4), classroom=classroom_)
    update = await teach({"item": ITEMS[0]})
    assert len(update["pairs"]) == 4 and update["greedy"]["tp1"]["answer"] == "6"
    good = next(p for p in update["pairs"].values() if p["correct"])
    exam = exam_node(classroom=classroom_)
    task = {"id": "x", "pair_id": good["id"], "student": "s0", "rep": 0, "rung": 0, "tp": ITEMS[0]["tp"],
            "teaching": good["text"], "ep": ITEMS[0]["eps"][1]}
    [record] = (await exam(task))["exams"].values()
    assert record["correct"] is True and record["answer"] == "9"


async def test_two_m1_subgraphs_with_their_own_classrooms_in_one_app() -> None:
    """Each subgraph picks its classroom from the app's context and writes its own key."""

    def hopeless(messages) -> str:
        return "No idea. [[Final Answer]]: 0"

    strong = Classroom.from_config(classroom(students=1), models=models(students=1))
    weak = Classroom.from_config(classroom(students=1), models=models(students=1, student=hopeless))

    class App(TypedDict, total=False):
        items: list[TeachingItem]
        strong: dict
        weak: dict

    class Rooms(TypedDict):
        strong: Classroom
        weak: Classroom

    app = StateGraph(App, context_schema=dict)
    app.add_node("a", m1_graph(M1Config(pairs_per_tp=4), output_key="strong", classroom=lambda ctx: ctx["strong"]))
    app.add_node("b", m1_graph(M1Config(pairs_per_tp=4), output_key="weak", classroom=lambda ctx: ctx["weak"]))
    app.add_edge(START, "a")
    app.add_edge(START, "b")
    app.add_edge("a", END)
    app.add_edge("b", END)
    out = await app.compile().ainvoke({"items": ITEMS}, context={"strong": strong, "weak": weak})
    assert out["strong"]["tp1"]["selections"]["max"]["correct"] is True
    assert out["weak"]["tp1"]["selections"]["max"]["correct"] is False  # no signal: falls back to votes
    assert max(p["lbt"] for p in out["weak"]["tp1"]["pairs"]) == 0.0


async def test_a_second_run_on_one_thread_computes_fresh_results() -> None:
    graph = m1_graph(M1Config(pairs_per_tp=4), checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "chat"}}
    first = await graph.ainvoke({"items": ITEMS[:1]}, config, context=room())
    second = await graph.ainvoke({"items": ITEMS[1:]}, config, context=room())
    assert set(first["results"]) == {"tp1"} and set(second["results"]) == {"tp2"}
    for out in (first, second):
        [result] = out["results"].values()
        assert sum(bool(p["exams"]) for p in result["pairs"]) == 4
        assert result["selections"]["max"]["correct"] is True


async def test_lbt_reward_node_keeps_the_best_draft() -> None:
    class Drafts(TypedDict, total=False):
        problem: dict
        eps: list
        drafts: list[str]
        lbt_score: list[float]
        best: str

    def keep_best(state: Drafts) -> dict:
        scores = state["lbt_score"]
        return {"best": state["drafts"][scores.index(max(scores))]}

    g = StateGraph(Drafts, context_schema=Classroom)
    g.add_node("reward", lbt_reward_node(draft_key="drafts"))
    g.add_node("keep", keep_best)
    g.add_edge(START, "reward")
    g.add_edge("reward", "keep")
    g.add_edge("keep", END)
    out = await g.compile().ainvoke({"problem": ITEMS[0]["tp"], "eps": ITEMS[0]["eps"], "drafts": [BAD, GOOD]},
                                    context=room())
    assert out["lbt_score"] == [0.0, 1.0] and out["best"] == GOOD


# ---- bad input: one clear error naming the fix, before any model call ---------------------------


async def test_missing_context_is_one_clear_error_before_any_call() -> None:
    with pytest.raises(ConfigError, match=r"needs a classroom: pass context=Classroom"):
        await m1_graph().ainvoke({"items": ITEMS})


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"tp": ITEMS[0]["tp"], "eps": ITEMS[0]["eps"], "rationales": []}, "rationale list is empty"),
        ({"tp": ITEMS[0]["tp"], "eps": [], "rationales": [GOOD]}, "has no exam problems"),
        ({"tp": ITEMS[0]["tp"], "eps": []}, "has no exam problems"),
    ],
)
async def test_bad_items_fail_before_any_model_call(item, message) -> None:
    m = models(students=1)
    with pytest.raises(ConfigError, match=message):
        await m1_graph().ainvoke({"items": [item]}, context=Classroom.from_config(classroom(students=1), models=m))
    assert m["teacher"][0].calls == [] and m["s0"][0].calls == []


async def test_score_rationales_bad_input() -> None:
    tp, eps = ITEMS[0]["tp"], ITEMS[0]["eps"]
    with pytest.raises(ConfigError, match="rationale list is empty"):
        await score_rationales(tp, [], eps, room())
    with pytest.raises(ConfigError, match="has no exam problems"):
        await score_rationales(tp, [GOOD], [], room())
    with pytest.raises(ConfigError, match="not one text"):
        await score_rationales(tp, GOOD, eps, room())  # type: ignore[arg-type]


def test_unknown_agent_in_who_teaches_whom() -> None:
    cfg = ClassroomConfig(teacher=AgentConfig(name="t", role="teacher"), students=[AgentConfig(name="s")],
                          edges=[("t", "nobody")])
    with pytest.raises(ConfigError, match=r"unknown agent 'nobody'.*name agents of the classroom"):
        Classroom.from_config(cfg, models={"t": ScriptedChatModel(respond=str), "s": ScriptedChatModel(respond=str)})


def test_models_for_unknown_agents_are_refused() -> None:
    with pytest.raises(ConfigError, match="no agent named 'typo'"):
        Classroom.from_config(classroom(), models={"typo": ScriptedChatModel(respond=str)})


def test_one_classroom_serves_runs_on_different_event_loops() -> None:
    import asyncio

    shared = room()
    graph = m1_graph(M1Config(pairs_per_tp=4))
    for _ in range(2):  # each asyncio.run is a new loop: limiters and prefix turns are made per loop
        out = asyncio.run(graph.ainvoke({"items": ITEMS[:1]}, context=shared))
        assert out["results"]["tp1"]["selections"]["max"]["correct"] is True


def test_public_api_and_layering() -> None:
    import ast
    from pathlib import Path

    import lbt_agents

    assert lbt_agents.__version__ and callable(lbt_agents.m1_graph) and callable(lbt_agents.m3_graph)
    root = Path(lbt_agents.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] != "graphs", f"{path} imports the top-level graphs package"
                if "graphs" in path.parts and name.startswith("lbt_agents"):
                    # the graph variants use only the public API: no private (_x) module
                    assert not any(part.startswith("_") for part in name.split(".")), f"{path}: {name}"
    assert (root / "prompts" / "math" / "teacher_system.md").is_file()


async def test_an_m1_run_with_a_bomb_answer_finishes_and_grades_it_wrong_with_the_reason() -> None:
    from lbt_agents import Examiner
    from lbt_agents.grading.math import MathGrader

    def bomb_on_ep1(messages) -> str:
        if "7 + 2" in messages[-1]["content"]:
            return "Huge. [[Final Answer]]: 10^{10^{10}}"
        return student_reply(messages)

    room_ = Classroom.from_config(classroom(students=1), models=models(students=1, student=bomb_on_ep1),
                                  examiner=Examiner(graders={"math": MathGrader(timeout_s=0.5)}))
    out = await m1_graph(M1Config(pairs_per_tp=4)).ainvoke({"items": ITEMS[:1]}, context=room_)
    exams = [e for p in out["results"]["tp1"]["pairs"] for e in p["exams"]]
    bombs = [e for e in exams if e["ep_id"] == "tp1/ep1"]
    assert len(exams) == 12 and len(bombs) == 4
    assert all(not e["correct"] and "timed out" in e.get("detail", "") for e in bombs)


def test_a_server_error_mid_stream_is_retried_like_a_5xx() -> None:
    import httpx
    import openai

    from lbt_agents.llm import _transient

    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    assert _transient(openai.APIError("EngineCore encountered an issue.", request, body=None))
    bad = openai.BadRequestError("too long", response=httpx.Response(400, request=request), body=None)
    assert not _transient(bad)
