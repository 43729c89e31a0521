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
    """A teaching problem with the exam problems its students will take.

    With ``rationales`` (TR-TA texts written elsewhere) M1 scores those instead
    of asking the teacher.
    """

    tp: Problem
    eps: list[Problem]
    rationales: NotRequired[list[str]]


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


class PairRecord(TypedDict):
    """A teacher's TR-TA pair (or its greedy answer) for one TP."""

    id: str
    tp_id: str
    index: int
    text: str
    answer: str | None
    correct: bool
    score: float
    """The examiner's score of the pair's answer on the TP itself (V-score for code)."""
    hidden_score: float | None
    """Code only: pass rate on the TP's hidden tests (S-score)."""
    truncated: bool
    prompt_tokens: int
    completion_tokens: int


class ExamTask(TypedDict):
    """What one exam needs: a student, a TR-TA pair as the example, an EP."""

    id: str
    pair_id: str
    student: str
    rep: int
    rung: int
    tp: Problem
    teaching: str
    ep: Problem


class ExamRecord(TypedDict):
    """One student's graded answer to one EP, with a pair as the in-context example."""

    id: str
    tp_id: str
    pair_id: str
    student: str
    ep_id: str
    rep: int
    rung: int
    text: str
    answer: str | None
    correct: bool
    score: float
    truncated: bool
    prompt_tokens: int
    completion_tokens: int
    hidden_score: NotRequired[float]
    detail: NotRequired[str]


class PairScore(TypedDict):
    """A pair's LbT score: its students' exam accuracy, pooled and per student."""

    lbt: float
    per_student: dict[str, float]
    exams_taken: int
    scored_as: str | None
    """The pair whose exams this score comes from, when it took none itself (adaptive M1)."""


class PairResult(PairRecord):
    """A scored pair, with its exams."""

    lbt: float
    per_student: dict[str, float]
    scored_as: str | None
    votes: int
    """Pairs of the TP whose answer is equivalent to this one's (itself included; 0 without an answer)."""
    group: NotRequired[int | None]
    """The pair's answer group in the TP (groups numbered in order of first appearance; None without an answer)."""
    exams: list[ExamRecord]


class Selection(TypedDict):
    """The answer one selection mode chose for a TP."""

    answer: str | None
    correct: bool
    pair_index: int | None
    votes: int


class TPResult(TypedDict):
    """Everything M1 found about one TP."""

    tp_id: str
    question: str
    gold: str
    ep_ids: list[str]
    note: str | None
    greedy: PairRecord | None
    pairs: list[PairResult]
    selections: dict[str, Selection]
