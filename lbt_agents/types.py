"""Plain, JSON-friendly records that flow through every teaching graph.

They are ``TypedDict`` s (not classes) so LangGraph checkpoints, HF datasets and
JSON files all store them as they are.
"""

from __future__ import annotations

from typing import Any, Literal

from typing_extensions import NotRequired, TypedDict

TaskKind = Literal["math", "code", "label"]
"""How a problem is graded: math equivalence, code tests, or a label."""


class Problem(TypedDict):
    """One problem: a teaching problem (TP) or an exam problem (EP)."""

    id: str
    question: str
    answer: str
    """Ground truth: a math answer, a label, or a reference solution for code."""
    kind: TaskKind
    solution: NotRequired[str]
    """A reference rationale, where the source has one."""
    meta: NotRequired[dict[str, Any]]
    """Task-specific data: code tests, label choices, subject, level, ..."""


class TeachingItem(TypedDict):
    """A teaching problem with the exam problems its students will take."""

    tp: Problem
    eps: list[Problem]


class Verdict(TypedDict):
    """The examiner's grade of one reply."""

    answer: str | None
    """The extracted final answer (or program); ``None`` when there is none."""
    correct: bool
    score: float
    """In [0, 1]: 1/0 for math and labels, the pass rate for code (V-score)."""
    truncated: bool
    """The reply was cut off by ``max_tokens``."""
    detail: NotRequired[str]
    hidden_score: NotRequired[float]
    """Code only: pass rate on the hidden tests (S-score)."""
