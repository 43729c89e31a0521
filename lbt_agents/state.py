"""Typed state shared by the teaching graphs, with its reducers."""

from __future__ import annotations

from typing import Annotated, Any

from typing_extensions import NotRequired, TypedDict

from lbt_agents.types import Problem, TeachingItem


def merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: records keyed by id; a later write for the same id wins."""
    return {**(left or {}), **(right or {})}


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


class ExamRecord(TypedDict):
    """One student's answer to one EP, with a pair as the in-context example."""

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


class ExamTask(TypedDict):
    """What one exam needs (sent to the ``exam`` node)."""

    id: str
    pair_id: str
    student: str
    rep: int
    rung: int
    tp: Problem
    teaching: str
    ep: Problem


class M1Input(TypedDict):
    items: list[TeachingItem]


class M1Output(TypedDict):
    results: dict[str, Any]


class M1State(TypedDict):
    items: list[TeachingItem]
    pairs: Annotated[dict[str, PairRecord], merge]
    greedy: Annotated[dict[str, PairRecord], merge]
    exams: Annotated[dict[str, ExamRecord], merge]
    plan: dict[str, Any]
    """Adaptive M1's bookkeeping: rung, active pairs per TP, why TPs stopped."""
    results: Annotated[dict[str, Any], merge]
