"""The paper profile wired into the M1 graph: prompts, prefill, extraction, grouping, votes and ties.

Expected answers follow the official functions' behaviour (``lbt_agents.paper``, checked against the
official code in the other tests here): they are cross-checked with ``paper.select`` on the pairs'
integer exam counts.
"""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from lbt_agents import Classroom, m1_graph, paper
from lbt_agents.config import RunConfig
from lbt_agents.runner import examiner_for
from lbt_agents.testing import ScriptedChatModel
from lbt_agents.types import Problem, TeachingItem


def _problem(pid: str, question: str, answer: str) -> Problem:
    return Problem(id=pid, question=question, answer=answer, kind="math")


def _item(gold: str = "5") -> TeachingItem:
    return TeachingItem(
        tp=_problem("tp", "What is 2 + 3?", gold),
        eps=[_problem("tp@a", "What is 4 + 1?", "5"), _problem("tp@b", "What is 7 + 2?", "9"),
             _problem("tp@c", "What is 1 + 1?", "2")],
    )


def _reply(body: str, answer: str) -> str:
    return f"{body}\n\n[[Final Answer]]:\n${answer}$\n"


def _student(messages: list[dict[str, str]]) -> str:
    """Passes when the TP's demo (the last one before the EP) is marked GOOD."""
    user = messages[1]["content"]
    demo = user.rsplit("[[Question]]:", 2)[-2]
    a, b = map(int, re.findall(r"\d+", user.rsplit("[[Question]]:", 1)[-1])[:2])
    return _reply("Add them.", str(a + b if "GOOD" in demo else a + b + 1))


def _config(**m1: object) -> RunConfig:
    return RunConfig(
        profile="paper",
        classroom={"teacher": {"name": "teacher", "sampling": {"seed": 0}}, "students": [{"name": "s0"}]},
        m1={"pairs_per_tp": 4, **m1},
    )


async def _run(teacher_texts: list[str], cfg: RunConfig | None = None, gold: str = "5"):
    cfg = cfg or _config(pairs_per_tp=len(teacher_texts))

    def teacher(messages, params):
        if params.get("temperature") == 0.0:
            return _reply("Greedy.", "4")
        return teacher_texts[params["seed"]]

    models = {"teacher": [ScriptedChatModel(respond=teacher)], "s0": [ScriptedChatModel(respond=_student)]}
    room = Classroom.from_config(cfg, models=models)  # the run config: its profile's examiner too
    out = await m1_graph(cfg.m1).ainvoke({"items": [_item(gold)]}, context=room)
    return out["results"]["tp"], models


def _official(result) -> dict[str, str]:
    """The official selection of the same pairs (their integer exam counts), for comparison."""
    pairs = [paper.Pair(p["answer"], sum(e["correct"] for e in p["exams"])) for p in result["pairs"]]
    return {mode: paper.select(mode, pairs).answer for mode in ("sc", "max", "sum", "avg")}


def _chosen(result) -> dict[str, str]:
    return {mode: result["selections"][mode]["answer"] for mode in ("sc", "max", "sum", "avg")}


async def test_prompts_prefill_and_sampling_are_the_official_ones() -> None:
    texts = [_reply("GOOD: 2 + 3 = 5.", "5")] * 2
    result, models = await _run(texts)
    teacher_calls = [c for c in models["teacher"][0].calls if c["kwargs"]["temperature"] != 0.0]
    tp, ep = _item()["tp"], _item()["eps"][0]
    assert teacher_calls[0]["messages"] == paper.teacher_messages(tp["question"])
    assert teacher_calls[0]["messages"][-1] == {"role": "assistant", "content": "[[Solution]]:\nLet's think step by step.\n\n"}
    kwargs = teacher_calls[0]["kwargs"]
    assert kwargs["extra_body"] == {"top_k": 20, "continue_final_message": True, "add_generation_prompt": False}
    assert (kwargs["temperature"], kwargs["top_p"], kwargs["max_tokens"]) == (0.7, 1.0, 1024)
    exams = models["s0"][0].calls
    assert len(exams) == 2 * 3 * 3  # every pair, 3 EPs, each taken 3 times
    first = next(c for c in exams if "What is 4 + 1?" in c["messages"][1]["content"])
    assert first["messages"] == paper.student_messages(tp["question"], paper.demo_of(texts[0]), ep["question"])
    assert first["kwargs"]["extra_body"]["continue_final_message"] is True
    assert [p["lbt"] for p in result["pairs"]] == [1.0, 1.0]


async def test_first_marker_wins_over_a_hallucinated_continuation() -> None:
    hallucinated = _reply("GOOD: 2 + 3 = 5.", "5") + "\n[[Question]]:\nWhat is 3 + 4?\n\n" + _reply("3 + 4 = 7", "7")
    result, _ = await _run([hallucinated, _reply("Bad.", "6")])
    assert result["pairs"][0]["answer"] == "5" and result["pairs"][0]["correct"] is True


async def test_spellings_of_one_value_are_separate_groups() -> None:
    texts = [_reply("GOOD", "0.5"), _reply("bad", "\\frac{1}{2}"), _reply("bad", "\\frac{1}{2}"), _reply("bad", "0.5")]
    result, _ = await _run(texts, gold="\\frac{1}{2}")
    assert [p["answer"] for p in result["pairs"]] == ["0.5", "\\frac{1}{2}", "\\frac{1}{2}", "0.5"]
    assert all(p["correct"] for p in result["pairs"])  # MATH is_equiv accepts both spellings
    assert [p["votes"] for p in result["pairs"]] == [2, 2, 2, 2]
    # SC: a full tie (2 votes each) goes to the answer first seen latest.
    assert result["selections"]["sc"]["answer"] == "\\frac{1}{2}"
    assert result["selections"]["max"]["answer"] == "0.5"  # the GOOD pair passed its exams
    assert _chosen(result) == _official(result)


async def test_full_ties_go_to_the_answer_first_seen_latest() -> None:
    texts = [_reply("GOOD", "5"), _reply("GOOD", "6"), _reply("bad", "7"), _reply("bad", "8")]
    result, _ = await _run(texts)
    assert _chosen(result) == {"sc": "8", "max": "6", "sum": "6", "avg": "6"} == _official(result)
    default_rule, _ = await _run(texts, _config(pairs_per_tp=4, tie_break="first_seen"))
    assert _chosen(default_rule) == {"sc": "5", "max": "5", "sum": "5", "avg": "5"}


async def test_pairs_without_a_marker_take_exams_and_vote() -> None:
    texts = ["GOOD: so the answer is 12", "GOOD: so the answer is 12", "bad", _reply("GOOD", "5")]
    result, models = await _run(texts)
    # A reply without a marker answers with its normalised last line (spaces removed).
    assert [p["answer"] for p in result["pairs"]] == ["GOOD:sotheansweris12", "GOOD:sotheansweris12", "bad", "5"]
    assert len(models["s0"][0].calls) == 4 * 9  # every pair took its 9 exams
    assert result["selections"]["sc"] == {"answer": "GOOD:sotheansweris12", "correct": False, "pair_index": 0,
                                          "votes": 2}
    assert _chosen(result) == _official(result)


def test_exact_sums_tie_where_floats_do_not() -> None:
    from lbt_agents.scoring import Candidate, select

    assert 1 / 3 + 1 / 3 + 1 / 3 + 1 / 3 + 1 / 3 + 1 / 3 != 2.0  # the float noise this guards against
    def same(a: str, b: str) -> bool:
        return a == b

    # Answer A: scores [1, 1]; answer B: [1, 2/3, 1/3] (one vote more). Both sum to 2 exactly, so votes decide.
    cands = [Candidate(0, "A", False, 1.0), Candidate(1, "A", False, 1.0),
             Candidate(2, "B", True, 1.0), Candidate(3, "B", True, 2 / 3), Candidate(4, "B", True, 1 / 3)]
    assert select("sum", cands, same).answer == "B"
    # Six thirds against two ones: equal sums, equal votes, so the tie rule decides, not the rounding.
    thirds = [Candidate(i, "T", False, 1 / 3) for i in range(6)]
    ones = [Candidate(6, "O", True, 1.0), Candidate(7, "O", True, 1.0), Candidate(8, "O", True, 0.0),
            Candidate(9, "O", True, 0.0), Candidate(10, "O", True, 0.0), Candidate(11, "O", True, 0.0)]
    assert sum(c.score for c in thirds) < sum(c.score for c in ones)  # in floats T loses by noise
    assert select("sum", thirds + ones, same).answer == "T"  # exactly tied: the answer first seen
    assert select("sum", thirds + ones, same, tie_break="last_seen").answer == "O"
    assert select("avg", [Candidate(0, "x", False, Fraction(2, 3))], same).answer == "x"


@pytest.mark.parametrize("profile, rule", [("default", "verify"), ("paper", "paper")])
def test_profiles_choose_the_math_rules(profile: str, rule: str) -> None:
    cfg = RunConfig(profile=profile)
    assert cfg.grading.math == rule
    grader = examiner_for(cfg).grader("math")
    assert grader.equivalent("0.5", "0.5")
    if profile == "paper":
        assert not grader.equivalent("0.5", "\\frac{1}{2}") and grader.extract("no marker here") == "nomarkerhere"
        assert (cfg.classroom.prompts, cfg.m1.tie_break, cfg.m1.pairs_per_tp, cfg.m1.reps_per_ep) == (
            "paper", "last_seen", 256, 3)
    else:
        assert grader.extract("no marker here") is None
        assert (cfg.classroom.prompts, cfg.m1.tie_break) == ("default", "first_seen")


def test_the_paper_profile_takes_the_recorded_official_sampling() -> None:
    official = paper.PAPER_SAMPLING["math"]
    cfg = RunConfig(profile="paper", classroom={"students": [{"name": "a"}, {"name": "b"}]})
    teacher, students = cfg.classroom.teacher.sampling, [s.sampling for s in cfg.classroom.students]
    assert cfg.m1.pairs_per_tp == official["teacher"]["pairs"]
    assert (teacher.temperature, teacher.top_k, teacher.top_p, teacher.max_tokens) == tuple(
        official["teacher"][k] for k in ("temperature", "top_k", "top_p", "max_tokens"))
    for sampling in students:  # the profile's student settings reach every student of the run
        assert (sampling.temperature, sampling.top_k, sampling.top_p, sampling.max_tokens) == tuple(
            official["student"][k] for k in ("temperature", "top_k", "top_p", "max_tokens"))
    assert (cfg.task.eps_per_tp, cfg.m1.reps_per_ep) == (
        official["student"]["exam_problems"], official["student"]["repetitions"])
