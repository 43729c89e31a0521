from __future__ import annotations

import asyncio
import time

import pytest

from lbt_agents.grading import get_grader
from lbt_agents.grading.label import extract_label, match_choice
from lbt_agents.types import Problem

VI = ["valid", "invalid"]
YN = ["Yes", "No"]
TF = ["True", "False"]


@pytest.mark.parametrize(
    ("reply", "choices", "label"),
    [
        ("...\n[[Final Answer]]: valid", VI, "valid"),
        ("...\n[[Final Answer]]: **Invalid**.", VI, "invalid"),
        ("[[Final Answer]]: \\boxed{invalid}", VI, "invalid"),
        ("[[Final Answer]]: true", YN, "Yes"),
        ("[[Final Answer]]: no", TF, "False"),
        ("[[Final Answer]]: The argument is invalid", VI, "invalid"),
        ("It looks valid at first, but the argument is invalid.", VI, "invalid"),
        ("The argument is valid.", VI, "valid"),
        ("No idea.", VI, None),
        ("[[Final Answer]]: maybe", YN, None),
        ("", YN, None),
    ],
)
def test_extract_label(reply, choices, label):
    assert extract_label(reply, choices) == label


def test_synonyms_only_through_the_choices():
    assert match_choice("yes", ["A", "B"]) is None
    assert match_choice("valid", YN) == "Yes"


def _p(answer: str, choices: list[str]) -> Problem:
    return Problem(id="t", question="q", answer=answer, kind="label", meta={"choices": choices})


def test_grade_label():
    g = get_grader("label")
    assert g.kind == "label"
    v = asyncio.run(g.grade(_p("invalid", VI), "so\n[[Final Answer]]: Invalid"))
    assert v["correct"] and v["score"] == 1.0 and v["answer"] == "invalid"
    v = asyncio.run(g.grade(_p("invalid", VI), "[[Final Answer]]: valid"))
    assert not v["correct"] and v["score"] == 0.0
    v = asyncio.run(g.grade(_p("Yes", YN), "cut", truncated=True))
    assert v["answer"] is None and v["truncated"] and not v["correct"]
    assert g.equivalent("YES.", "yes") and not g.equivalent("yes", "no")


def test_unknown_kind():
    with pytest.raises(ValueError, match="no grader"):
        get_grader("poetry")  # type: ignore[arg-type]


PI = ["plausible", "implausible"]
EN = ["entailment", "non-entailment"]


@pytest.mark.parametrize(
    ("reply", "choices", "label"),
    [
        ("[[Final Answer]]: not valid", VI, "invalid"),
        ("[[Final Answer]]: Not valid.", VI, "invalid"),
        ("[[Final Answer]]: **not** valid", VI, "invalid"),
        ("[[Final Answer]]: not invalid", VI, "valid"),
        ("[[Final Answer]]: not plausible", PI, "implausible"),
        ("[[Final Answer]]: not implausible", PI, "plausible"),
        ("[[Final Answer]]: It is not valid", VI, "invalid"),
        ("[[Final Answer]]: the argument is invalid", VI, "invalid"),
        ("[[Final Answer]]: The argument isn't valid.", VI, "invalid"),
        ("[[Final Answer]]: The argument isn’t valid.", VI, "invalid"),
        ("[[Final Answer]]: the argument is not deductively valid", VI, "invalid"),
        ("[[Final Answer]]: it cannot be valid", VI, "invalid"),
        ("[[Final Answer]]: It is not correct", VI, "invalid"),
        ("[[Final Answer]]: invalid, not valid", VI, "invalid"),
        ("[[Final Answer]]: valid (not invalid)", VI, "valid"),
        ("[[Final Answer]]: not true", YN, "No"),
        ("[[Final Answer]]: not valid", YN, "No"),
        ("[[Final Answer]]: not true", TF, "False"),
        ("[[Final Answer]]: not false", TF, "True"),
        ("[[Final Answer]]: not entailment", EN, "non-entailment"),
        ("[[Final Answer]]: neither", VI, None),
        ("[[Final Answer]]: neither valid nor invalid", VI, None),
        ("[[Final Answer]]: Neither", ["yes", "no", "neither"], "neither"),
        ("[[Final Answer]]: not A", ["A", "B", "C"], None),
        ("At first it seems valid, but in fact the argument is not valid.", VI, "invalid"),
        ("I don't think the argument is valid.", VI, "invalid"),
        ("It is not only plausible but likely.", PI, "plausible"),
        ("I was not sure at first. The argument is valid.", VI, "valid"),
        ("The argument is valid, not invalid.", VI, "valid"),
    ],
)
def test_negations_and_near_misses(reply, choices, label):
    assert extract_label(reply, choices) == label


def test_grade_negated_label():
    g = get_grader("label")
    assert asyncio.run(g.grade(_p("invalid", VI), "[[Final Answer]]: not valid"))["correct"]
    assert not asyncio.run(g.grade(_p("valid", VI), "[[Final Answer]]: not valid"))["correct"]
    assert asyncio.run(g.grade(_p("implausible", PI), "[[Final Answer]]: not plausible"))["correct"]
    assert not asyncio.run(g.grade(_p("plausible", PI), "[[Final Answer]]: not plausible"))["correct"]


@pytest.mark.parametrize(
    ("reply", "choices"),
    [
        ("not A " * 200_000, ["A", "B", "C"]),
        ("[[Final Answer]]: " + "neither valid " * 100_000, VI),
        ("\\boxed{" * 4000 + "valid", VI),
        ("x" + "\n" * 20_000 + "not valid", VI),
    ],
)
def test_hostile_label_replies_are_cheap(reply, choices):
    start = time.perf_counter()
    extract_label(reply, choices)
    assert time.perf_counter() - start < 0.5
