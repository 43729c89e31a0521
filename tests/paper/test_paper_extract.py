"""Extraction and grading as the official pipeline does them.

Every expected value below was checked by running the official
``MathExamScorer.post_process`` / ``score_exam_result`` (imagination-research/lbt,
``lbt/datasets_adapter/math_dataset.py``, copied to a scratch folder outside
this repo) on the same inputs.
"""

import pytest

from lbt_agents.paper import (
    answer_line,
    extract_answer,
    gold_answer,
    grade,
    grade_reply,
)

HALLUCINATED = "x\n[[Final Answer]]:\n$5$\n\n[[Question]]:\nq\n\n[[Final Answer]]:\n$7$\n"


def test_first_marker_wins_over_a_hallucinated_continuation():
    assert answer_line(HALLUCINATED) == "$5$"
    assert extract_answer(HALLUCINATED) == "5"


@pytest.mark.parametrize(
    ("reply", "answer"),
    [
        (
            "so the answer is 12",
            "sotheansweris12",
        ),  # no marker: the normalised last line
        (
            "[[Final Answer]]: 12",
            "[[FinalAnswer]]:12",
        ),  # marker on the answer's line is no marker
        (
            "[[Final Answer]]:\n$12$",
            "12",
        ),  # no newline after the line: falls back to the last line
        ("[[Final Answer]]:\n10 \\text{ cm}\n", "10"),
        ("[[Final Answer]]:\n$\\boxed{6}$\n", "6"),
        ("", ""),  # an empty reply still answers (with "")
        ("step one\n\n  \n", "stepone"),
    ],
)
def test_extract(reply, answer):
    assert extract_answer(reply) == answer


@pytest.mark.parametrize(
    ("gold", "reply", "answer", "correct"),
    [
        (
            "\\frac{1}{2}",
            "[[Final Answer]]:\n$0.5$\n",
            "0.5",
            True,
        ),  # graded equal, grouped apart
        ("6", "[[Final Answer]]:\n$6.0$\n", "6.0", False),
        ("5", HALLUCINATED, "5", True),
        ("7", HALLUCINATED, "5", False),
        ("12", "so the answer is 12", "sotheansweris12", False),
        ("\\text{(B)}", "[[Final Answer]]:\n(B)\n", "(B)", True),
        (
            "3.",
            "[[Final Answer]]:\n$3$\n",
            "3",
            True,
        ),  # the gold is wrapped as $3.$: ".$" -> "$"
    ],
)
def test_grade_reply(gold, reply, answer, correct):
    graded = grade_reply(reply, gold)
    assert (graded.answer, graded.correct) == (answer, correct)
    assert grade(graded.answer, gold) is correct


def test_gold_is_wrapped_in_dollars_before_normalising():
    assert gold_answer("3.") == "3"
    assert gold_answer("\\boxed{[2,5)}") == "[2,5)"
