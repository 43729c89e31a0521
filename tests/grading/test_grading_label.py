from __future__ import annotations

import asyncio

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
