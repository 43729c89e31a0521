"""Exemplar sets: parsing a teacher's reply, formatting, dedup, few-shot prompts."""

from __future__ import annotations

import pytest

from lbt_agents.exemplars import (
    Exemplar,
    ExemplarParseError,
    dedup,
    few_shot_messages,
    format_exemplars,
    from_problem,
    parse_exemplars,
    set_key,
)
from lbt_agents.types import Problem

REPLY = """Sure! Here are the examples.

### Example 1
Problem: All A are B. x is A. Is x B?
Options: valid, invalid
Solution: x is A, all A are B,
so x is B.
[[Final Answer]]: valid

**Example 2:**
**Problem:** Some A are B. x is A. Is x B?
**Solution:** Not every A is B.
**[[Final Answer]]:** Invalid.
"""


def test_parse_a_messy_reply_and_map_answers_onto_choices() -> None:
    got = parse_exemplars(REPLY, 2, choices=["valid", "invalid"])
    assert [e["answer"] for e in got] == ["valid", "invalid"]
    assert got[0]["question"] == "All A are B. x is A. Is x B?\nOptions: valid, invalid"
    assert got[0]["solution"] == "x is A, all A are B,\nso x is B."
    assert got[1]["solution"] == "Not every A is B."


def test_extra_examples_are_cut_to_k() -> None:
    assert len(parse_exemplars(REPLY, 1)) == 1


@pytest.mark.parametrize(
    ("text", "k", "message"),
    [
        (REPLY, 3, "found 2 complete example"),
        ("no examples here", 1, "found 0 complete"),
        ("### Example 1\nSolution: s\n[[Final Answer]]: valid", 1, "example 1 has no 'Problem:'"),
        ("### Example 1\nProblem: p\nSolution: s\n[[Final Answer]]: maybe", 1, "'maybe' is not one of valid, invalid"),
    ],
)
def test_parse_errors_say_what_is_wrong(text, k, message) -> None:
    with pytest.raises(ExemplarParseError, match=message):
        parse_exemplars(text, k, choices=["valid", "invalid"])


def test_format_then_parse_round_trips() -> None:
    sets = [Exemplar(question="Q one?", solution="Because.", answer="True"),
            Exemplar(question="Q two?\nOptions: True, False", solution="Step 1. Step 2.", answer="False")]
    assert parse_exemplars(format_exemplars(sets), 2, choices=["True", "False"]) == sets


def test_dedup_ignores_order_case_and_whitespace() -> None:
    a = [Exemplar(question="Q1", solution="s", answer="x"), Exemplar(question="Q2", solution="t", answer="y")]
    b = [Exemplar(question="q2 ", solution="T", answer="Y"), Exemplar(question="Q1", solution="s", answer="x")]
    c = [Exemplar(question="Q3", solution="s", answer="x")]
    assert set_key(a) == set_key(b) != set_key(c)
    assert dedup([a, b, c, a]) == [None, 0, None, 0]
    assert dedup([c, a], seen=[set_key(a)]) == [None, -1]


def test_few_shot_messages_put_exemplars_as_turns_and_the_problem_last() -> None:
    p = Problem(id="p", question="New question?", answer="valid", kind="label", solution="ref")
    shots = [from_problem(Problem(id="e", question="Old?", answer="invalid", kind="label", solution="Why."))]
    msgs = few_shot_messages(shots, p, task="formal_fallacies", persona="careful")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert "careful student" in msgs[0]["content"]
    assert msgs[1]["content"].strip() == "Problem: Old?"
    assert msgs[2]["content"] == "Why.\n[[Final Answer]]: invalid"
    assert msgs[3]["content"].strip() == "Problem: New question?"


def test_copied_format_placeholders_are_not_exemplars() -> None:
    text = "### Example 1\nProblem: <the problem, with its options if it has any>\nSolution: <short reasoning>\n" \
           "[[Final Answer]]: valid\n\n### Example 2\nProblem: Real one?\nSolution: <short step-by-step reasoning>\n" \
           "[[Final Answer]]: invalid"
    with pytest.raises(ExemplarParseError, match="found 1 complete example.*example 1 has no 'Problem:'"):
        parse_exemplars(text, 2, choices=["valid", "invalid"])
    assert parse_exemplars(text, 1)[0] == {"question": "Real one?", "solution": "", "answer": "invalid"}
