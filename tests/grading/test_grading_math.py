from __future__ import annotations

import asyncio
import time

import pytest

from lbt_agents.grading import get_grader
from lbt_agents.grading.math import extract_math_answer, last_boxed, math_equivalent, normalize_math_answer
from lbt_agents.types import Problem

EQUAL = [
    ("\\frac{1}{2}", "0.5"),
    ("\\dfrac12", "1/2"),
    ("\\tfrac{3}{4}", "\\frac34"),
    ("(1,2)", "(1, 2)"),
    ("10\\%", "10"),
    ("\\text{(B)}", "B"),
    ("(C)", "C"),
    ("x=3", "3"),
    ("y = 2x+3", "2x+3"),
    ("1,000", "1000"),
    ("1{,}000", "1000"),
    ("\\sqrt{2}/2", "\\frac{\\sqrt2}{2}"),
    ("[1,2)", "[1, 2)"),
    ("(-\\infty, 3]", "(-\\infty,3]"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
    ("5\\text{ cm}", "5"),
    ("30^\\circ", "30"),
    ("\\$18.90", "18.9"),
    ("2\\sqrt{3}", "\\sqrt{12}"),
    ("\\pi/2", "\\frac{\\pi}{2}"),
    ("5.0", "5"),
    (".5", "0.5"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    ("\\text{Evelyn}", "Evelyn"),
    ("18", "18 dollars"),
    ("\\frac{14}{3}", "4\\frac{2}{3}"),
    ("-\\frac{1}{3}", "-1/3"),
    ("$\\frac{9}{4}$", "2.25"),
]

DIFFERENT = [
    ("\\frac{1}{2}", "2"),
    ("(1,2)", "(2,1)"),
    ("1000", "100"),
    ("x=3", "x=4"),
    ("\\sqrt{2}", "2"),
    ("[1,2)", "[1,2]"),
    ("B", "C"),
    ("3", "-3"),
    ("\\frac{\\pi}{2}", "\\pi"),
    ("1,000", "1"),
    ("10", "1"),
    ("0.5", "0.51"),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}2\\\\1\\end{pmatrix}"),
    ("\\frac{14}{3}", "4"),
    ("2", ""),
]


@pytest.mark.parametrize(("gold", "pred"), EQUAL)
def test_equivalent_answers(gold, pred):
    assert math_equivalent(gold, pred)


@pytest.mark.parametrize(("gold", "pred"), DIFFERENT)
def test_different_answers(gold, pred):
    assert not math_equivalent(gold, pred)


@pytest.mark.parametrize(
    ("reply", "answer"),
    [
        ("Work...\n[[Final Answer]]: $\\frac{1}{2}$", "\\frac{1}{2}"),
        ("So \\boxed{4}.\n[[Final Answer]]: 5\nextra", "5"),
        ("[[Final Answer]]: \\boxed{(1,2)}", "(1,2)"),
        ("first \\boxed{5} then \\fbox{6}", "6"),
        ("\\boxed{\\frac{a}{\\sqrt{b}}} trailing", "\\frac{a}{\\sqrt{b}}"),
        ("\\boxed 7 is it", "7"),
        ("The answer is 42.", "42"),
        ("The final answer is: 3.5.", "3.5"),
        ("Reasoning\n#### 1,234", "1,234"),
        ("**Answer:** 7", "7"),
        ("no answer here", None),
        ("[[Final Answer]]:", None),
        ("", None),
        ("\\boxed{unbalanced", None),
    ],
)
def test_extract(reply, answer):
    assert extract_math_answer(reply) == answer


def test_last_boxed_is_brace_balanced():
    assert last_boxed("a \\boxed{\\frac{1}{\\{2\\}}} b") == "\\frac{1}{\\{2\\}}"
    assert last_boxed("nothing") is None


def test_normalize_groups_equal_forms():
    assert normalize_math_answer("\\dfrac12") == normalize_math_answer("\\frac{1}{2}") == normalize_math_answer("1/2")
    assert normalize_math_answer("1,000") == "1000"
    assert normalize_math_answer("\\frac{1}{2}") != normalize_math_answer("\\frac{1}{3}")


def _p(answer: str) -> Problem:
    return Problem(id="t", question="q", answer=answer, kind="math")


def test_grade_verdicts():
    g = get_grader("math")
    assert g.kind == "math"
    v = asyncio.run(g.grade(_p("\\frac{1}{2}"), "half\n[[Final Answer]]: 0.5"))
    assert v["correct"] and v["score"] == 1.0 and v["answer"] == "0.5" and not v["truncated"]
    v = asyncio.run(g.grade(_p("3"), "[[Final Answer]]: 4"))
    assert not v["correct"] and v["score"] == 0.0
    v = asyncio.run(g.grade(_p("3"), "I was cut off in the midd", truncated=True))
    assert v["answer"] is None and not v["correct"] and v["truncated"]
    v = asyncio.run(g.grade(_p("3"), "\\boxed{\\frac{{{"))
    assert not v["correct"]


def test_grade_is_safe_in_threads():
    g = get_grader("math")

    async def many():
        return await asyncio.gather(*(g.grade(_p("\\sqrt{12}"), f"[[Final Answer]]: {i}\\sqrt{{3}}") for i in range(4)))

    verdicts = asyncio.run(many())
    assert [v["correct"] for v in verdicts] == [False, False, True, False]


HOSTILE = {
    "20k newlines": "x" + "\n" * 20_000 + "y",
    "4,000 unclosed boxes": "\\boxed{" * 4000,
    "4,000 unclosed boxes with text": "\\boxed{ a " * 4000,
    "blank lines after Answer": "\n \n" * 10_000 + "Answer:" + "\n" * 10_000,
    "deep braces": "\\boxed{" + "{" * 50_000 + "1" + "}" * 50_000 + "}",
    "a megabyte": "word " * 200_000 + "\\boxed{5}",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_extraction_is_linear(name):
    start = time.perf_counter()
    extract_math_answer(HOSTILE[name])
    assert time.perf_counter() - start < 0.5


def test_normalization_is_linear():
    start = time.perf_counter()
    assert normalize_math_answer("1." + "0" * 50_000 + "1") != normalize_math_answer("1")
    assert normalize_math_answer("2.50") == "2.5"
    assert time.perf_counter() - start < 0.5


def test_extraction_of_the_deepest_and_last_box():
    assert extract_math_answer(HOSTILE["deep braces"]) == "{" * 50_000 + "1" + "}" * 50_000
    assert extract_math_answer(HOSTILE["a megabyte"]) == "5"
    assert extract_math_answer("\\boxed{1} and \\boxed{2" + "}" * 3) == "2"
    assert extract_math_answer("**Answer:** 7\n\n\n  Answer: 8\n") == "8"
