"""The M1 graph's logic, offline, with scripted chat models."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from lbt_agents import Classroom, m1_graph
from lbt_agents.config import AgentConfig, ClassroomConfig, M1Config, RunConfig, Sampling
from lbt_agents.m1 import arun_m1
from lbt_agents.testing import ScriptedChatModel
from lbt_agents.types import Problem, TeachingItem


def add_problem(pid: str, a: int, b: int) -> Problem:
    return Problem(id=pid, question=f"What is {a} + {b}?", answer=str(a + b), kind="math")


ITEMS: list[TeachingItem] = [
    TeachingItem(tp=add_problem("tp1", 2, 3), eps=[add_problem("tp1/ep0", 4, 1), add_problem("tp1/ep1", 7, 2), add_problem("tp1/ep2", 1, 1)]),
    TeachingItem(tp=add_problem("tp2", 10, 5), eps=[add_problem("tp2/ep0", 3, 3), add_problem("tp2/ep1", 6, 2), add_problem("tp2/ep2", 9, 9)]),
]


def teacher_reply(messages, params) -> str:
    """Sample with seed 0 teaches well and answers right; others teach badly and answer wrong.
    Greedy (temperature 0) answers wrong, so greedy and SC both miss and M1 wins."""
    a, b = map(int, re.findall(r"\d+", messages[-1]["content"])[:2])
    if params.get("temperature") == 0.0 or params.get("seed", 0) % 4 != 0:
        return f"A bad method (take {params.get('seed')}): add and add one. [[Final Answer]]: {a + b + 1}"
    return f"A good method: add the numbers. [[Final Answer]]: {a + b}"


def student_reply(messages) -> str:
    a, b = map(int, re.findall(r"\d+", messages[-1]["content"])[:2])
    good = "good method" in messages[-2]["content"]
    return f"Following the example. [[Final Answer]]: {a + b if good else a + b + 7}"


def classroom(students: int = 2) -> ClassroomConfig:
    return ClassroomConfig(
        teacher=AgentConfig(name="teacher", role="teacher", sampling=Sampling(temperature=0.8, n=4, seed=0)),
        students=[AgentConfig(name=f"s{i}", sampling=Sampling(temperature=0.0)) for i in range(students)],
    )


def models(students: int = 2, student=student_reply):
    out = {"teacher": [ScriptedChatModel(respond=teacher_reply)]}
    for i in range(students):
        out[f"s{i}"] = [ScriptedChatModel(respond=student)]
    return out


async def test_fan_out_counts_scores_and_selection() -> None:
    m = models()
    room = Classroom.from_config(classroom(), models=m, max_concurrency=8)
    graph = m1_graph(M1Config(pairs_per_tp=4))
    out = await graph.ainvoke({"items": ITEMS}, {"max_concurrency": 8}, context=room)

    # 2 TPs x (4 samples + 1 greedy) teacher calls; 2 TPs x 4 pairs x 3 EPs x 1 rep x 2 students exams.
    assert len(m["teacher"][0].calls) == 2 * 5
    assert len(m["s0"][0].calls) + len(m["s1"][0].calls) == 2 * 4 * 3 * 2
    assert len(m["s0"][0].calls) == len(m["s1"][0].calls) == 24

    res = out["results"]["tp1"]
    scores = {p["index"]: p["lbt"] for p in res["pairs"]}
    assert scores == {0: 1.0, 1: 0.0, 2: 0.0, 3: 0.0}
    assert res["pairs"][0]["per_student"] == {"s0": 1.0, "s1": 1.0}
    assert len(res["pairs"][0]["exams"]) == 3 * 2
    sel = res["selections"]
    assert sel["greedy"]["correct"] is False
    assert sel["sc"] == {"answer": "6", "correct": False, "pair_index": 1, "votes": 3}
    for mode in ("max", "sum", "avg"):
        assert sel[mode]["answer"] == "5" and sel[mode]["correct"] is True


async def test_student_prompt_puts_shared_part_first() -> None:
    m = models(students=1)
    room = Classroom.from_config(classroom(students=1), models=m)
    graph = m1_graph(M1Config(pairs_per_tp=4, greedy_baseline=False))
    await graph.ainvoke({"items": ITEMS[:1]}, context=room)
    calls = [c["messages"] for c in m["s0"][0].calls]
    same_pair = [c for c in calls if c[2]["content"].startswith("A good method")]
    assert len(same_pair) == 3
    # Everything but the last message is byte-identical across the pair's exams; the EP comes last.
    assert all(c[:-1] == same_pair[0][:-1] for c in same_pair)
    for ep in ITEMS[0]["eps"]:
        assert sum(ep["question"] in c[-1]["content"] for c in same_pair) == 1
    assert [msg["role"] for msg in same_pair[0]] == ["system", "user", "assistant", "user"]
    assert ITEMS[0]["tp"]["question"] in same_pair[0][1]["content"]


async def test_reply_without_answer_is_wrong_not_a_crash() -> None:
    m = models(students=1, student=lambda messages: "I do not know.")
    room = Classroom.from_config(classroom(students=1), models=m)
    graph = m1_graph(M1Config(pairs_per_tp=4))
    out = await graph.ainvoke({"items": ITEMS[:1]}, context=room)
    exams = [e for p in out["results"]["tp1"]["pairs"] for e in p["exams"]]
    assert exams and all(e["answer"] is None and e["correct"] is False for e in exams)


async def test_adaptive_skips_unanimous_and_halves() -> None:
    def unanimous_teacher(messages, params):
        a, b = map(int, re.findall(r"\d+", messages[-1]["content"])[:2])
        return f"A good method. [[Final Answer]]: {a + b}"

    m = {"teacher": [ScriptedChatModel(respond=unanimous_teacher)], "s0": [ScriptedChatModel(respond=student_reply)]}
    room = Classroom.from_config(classroom(students=1), models=m)
    cfg = M1Config(pairs_per_tp=4, adaptive={"enabled": True})
    out = await m1_graph(cfg).ainvoke({"items": ITEMS}, context=room)
    assert m["s0"][0].calls == []
    assert out["results"]["tp1"]["note"].startswith("unanimous")
    assert out["results"]["tp1"]["selections"]["max"]["correct"] is True

    m = models(students=1)
    room = Classroom.from_config(classroom(students=1), models=m)
    out = await m1_graph(cfg).ainvoke({"items": ITEMS}, context=room)
    full = 2 * 4 * 3  # what full M1 would examine
    assert 0 < len(m["s0"][0].calls) < full
    for res in out["results"].values():
        assert res["selections"]["max"]["correct"] is True


async def test_adaptive_examines_one_pair_per_answer() -> None:
    m = models(students=1)
    room = Classroom.from_config(classroom(students=1), models=m)
    out = await m1_graph(M1Config(pairs_per_tp=4, adaptive={"enabled": True})).ainvoke({"items": ITEMS[:1]}, context=room)
    pairs = out["results"]["tp1"]["pairs"]
    # Two answer groups: p0 (right) alone, p1-p3 (the same wrong answer); p1 stands for its group.
    assert [bool(p["exams"]) for p in pairs] == [True, True, False, False]
    assert [p["scored_as"] for p in pairs] == [None, None, "tp1#p1", "tp1#p1"]
    assert pairs[2]["lbt"] == pairs[1]["lbt"]
    assert out["results"]["tp1"]["selections"]["max"]["correct"] is True

    m = models(students=1)
    room = Classroom.from_config(classroom(students=1), models=m)
    cfg = M1Config(pairs_per_tp=4, adaptive={"enabled": True, "one_pair_per_answer": False})
    out = await m1_graph(cfg).ainvoke({"items": ITEMS[:1]}, context=room)
    assert all(p["exams"] and p["scored_as"] is None for p in out["results"]["tp1"]["pairs"])


@pytest.mark.parametrize("stop", [True, False])
async def test_adaptive_stops_after_a_rung_without_a_pass(stop: bool) -> None:
    def hopeless(messages) -> str:
        return "I cannot follow. [[Final Answer]]: 0"

    m = models(students=1, student=hopeless)
    room = Classroom.from_config(classroom(students=1), models=m)
    cfg = M1Config(pairs_per_tp=4, adaptive={"enabled": True, "stop_without_signal": stop, "keep_fraction": 0.9})
    out = await m1_graph(cfg).ainvoke({"items": ITEMS[:1]}, context=room)
    rungs = sorted({e["rung"] for p in out["results"]["tp1"]["pairs"] for e in p["exams"]})
    if stop:
        assert rungs == [0]
        assert out["results"]["tp1"]["note"] == "every exam of rung 0 failed: stopped"
    else:
        assert rungs == [0, 1, 2]
        assert out["results"]["tp1"]["note"] is None


def run_config(tmp_path: Path, **m1) -> RunConfig:
    return RunConfig(
        run_id="t", output_dir=tmp_path, classroom=classroom(students=1), m1=M1Config(pairs_per_tp=4, **m1),
        task={"name": "gsm8k", "limit": 1}, max_concurrency=4,
    )


async def test_resume_never_repeats_finished_exams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lbt_agents.tasks.load_task", lambda cfg: ITEMS)
    lock = threading.Lock()
    answered: list[tuple[str, str]] = []
    budget = {"left": 5}

    def flaky_student(messages):
        with lock:
            if budget["left"] <= 0:
                raise ValueError("student crashed")
            budget["left"] -= 1
        reply = student_reply(messages)
        with lock:
            answered.append((messages[-2]["content"], messages[-1]["content"]))
        return reply

    cfg = run_config(tmp_path)
    crash = {"teacher": [ScriptedChatModel(respond=teacher_reply)], "s0": [ScriptedChatModel(respond=flaky_student)]}
    with pytest.raises(ValueError):
        await arun_m1(cfg, models=crash, progress=False)
    from lbt_agents.cache import CallCache

    cache = CallCache(tmp_path / "t" / "cache.sqlite")
    finished = len(cache) - 2 * 5  # minus the teacher's calls: 2 TPs x (4 samples + greedy)
    cache.close()
    assert 0 < finished <= 5

    answered.clear()
    budget["left"] = 10_000
    healthy = {"teacher": [ScriptedChatModel(respond=teacher_reply)], "s0": [ScriptedChatModel(respond=flaky_student)]}
    result = await arun_m1(cfg, resume="t", models=healthy, progress=False)
    # Only the unfinished exams reach the model again.
    assert len(answered) == 2 * 4 * 3 - finished
    assert len(set(answered)) == len(answered)
    assert healthy["teacher"][0].calls == []  # teaching finished before the crash
    assert result.summary["exams"] == 24
    assert (result.run_dir / "exams" / "dataset_info.json").is_file()  # the shards, concatenated
    assert result.summary["accuracy"]["max"] == 1.0


async def test_cache_keeps_samples_distinct(tmp_path: Path) -> None:
    from lbt_agents.cache import CallCache
    from lbt_agents.llm import ChatAgent

    seen: list[int] = []
    model = ScriptedChatModel(respond=lambda m, p: (seen.append(p["seed"]), f"sample {p['seed']}")[1])
    cache = CallCache(tmp_path / "c.sqlite")
    agent = ChatAgent(AgentConfig(name="t", sampling=Sampling(n=3, seed=10)), models=[model], cache=cache)
    msgs = [{"role": "user", "content": "hi"}]
    first = await agent.sample(msgs)
    assert sorted(r.text for r in first) == ["sample 10", "sample 11", "sample 12"]
    again = await agent.sample(msgs)
    assert [r.text for r in again] == [r.text for r in first] and all(r.cached for r in again)
    other = await agent.sample(msgs, key="exam-2")  # another purpose: new samples
    assert not any(r.cached for r in other)
    assert len(seen) == 6


@pytest.mark.parametrize("adaptive", [{}, {"enabled": True, "halving": True, "keep_fraction": 0.5}])
async def test_exams_go_out_exams_per_step_at_a_time_with_the_same_results(adaptive: dict) -> None:
    """A window of exams per graph step (``m1.exams_per_step``) sends the same exams as one big step."""
    runs = {}
    for window in (None, 5):
        m = models()
        room = Classroom.from_config(classroom(), models=m, max_concurrency=8)
        m1 = M1Config.model_validate({"pairs_per_tp": 4, "exams_per_step": window, "adaptive": adaptive})
        steps: list[int] = []  # exams finished in each graph step ("values" comes once a step)
        out, this_step = {}, 0
        async for mode, chunk in m1_graph(m1).astream({"items": ITEMS}, {"max_concurrency": 8}, context=room,
                                                      stream_mode=["updates", "values"]):
            if mode == "updates":
                this_step += len((chunk.get("exam") or {}).get("exams", {}))
            else:
                out = chunk
                steps.append(this_step)
                this_step = 0
        calls = sorted(str(c) for s in ("s0", "s1") for c in m[s][0].calls)
        runs[window] = (out["results"], calls, [n for n in steps if n])
    (whole, whole_calls, one_step), (windowed, windowed_calls, sizes) = runs[None], runs[5]
    assert max(one_step) > 5  # without a window a step holds more exams than the window
    assert windowed == whole and windowed_calls == whole_calls  # the same exams, results and selections
    assert sizes and max(sizes) <= 5 and sum(sizes) == len(windowed_calls)
