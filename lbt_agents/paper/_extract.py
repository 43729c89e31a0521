"""Answer extraction and grading as the official pipeline does them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lbt_agents.paper._equiv import is_equiv
from lbt_agents.paper._normalize import normalize_final_answer

FINAL_ANSWER_MARKER = "[[Final Answer]]"
_MARKED_LINE = re.compile(r"\[\[Final Answer\]\]:\n([^\n]+)\n")


def answer_line(text: str) -> str:
    """The raw answer line: the first ``[[Final Answer]]:\\n<line>\\n``, else the last line."""
    if match := _MARKED_LINE.search(text):
        return match.group(1)
    return text.strip().split("\n")[-1]


def extract_answer(text: str) -> str:
    """The normalised answer of a reply (the official grouping key).

    The *first* marked line wins, so a reply that goes on to invent another
    question and answer keeps its own answer.  A reply without a marker answers
    with its last line; every reply has an answer (possibly ``""``).
    """
    return normalize_final_answer(answer_line(text))


def gold_answer(gold: str) -> str:
    """A reference answer as the official grader sees it (wrapped as ``$gold$``, then extracted)."""
    return extract_answer(f"{FINAL_ANSWER_MARKER}:\n${gold}$\n")


def grade(answer: str, gold: str) -> bool:
    """Whether a normalised ``answer`` is correct for the reference ``gold`` (MATH ``is_equiv``)."""
    return is_equiv(answer, gold_answer(gold))


@dataclass(frozen=True)
class Graded:
    answer: str
    """The normalised answer: the exact grouping key."""
    correct: bool


def grade_reply(text: str, gold: str) -> Graded:
    """Extract the answer of a reply and grade it against ``gold``."""
    answer = extract_answer(text)
    return Graded(answer, grade(answer, gold))
