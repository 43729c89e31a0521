"""Answer selection: greedy, self-consistency (SC) and M1's MAX, SUM and AVG.

Teacher answers are grouped by equivalence.  Each mode ranks the groups:

- ``sc``:  by vote count (number of TR-TA pairs giving that answer);
- ``max``: by the best LbT score in the group (the best pair's answer);
- ``sum``: by the sum of LbT scores (a score-weighted vote);
- ``avg``: by the mean LbT score.

Scores are compared exactly (as rationals, see :func:`exact`), so a true tie is
never decided by float rounding.  Ties go to the group with more votes (the
paper's rule), then to the answer that appeared first (``tie_break="first_seen"``)
or, as the official code does, to the one first seen latest (``"last_seen"``).
Pairs without an answer take no part.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Sequence

from lbt_agents.config import SelectionMode, TieBreak

Equivalence = Callable[[str, str], bool]


@dataclass(frozen=True)
class Candidate:
    """One TR-TA pair as selection sees it."""

    index: int
    answer: str | None
    correct: bool
    score: float | Fraction = 0.0
    """LbT score: the students' exam accuracy (unexamined exams count as failed)."""


@dataclass(frozen=True)
class Selection:
    mode: SelectionMode
    answer: str | None
    correct: bool
    index: int | None
    """The pair that stands for the chosen answer."""
    votes: int = 0


def group_answers(candidates: Sequence[Candidate], equivalent: Equivalence) -> list[list[Candidate]]:
    """Equivalent answers in one group; groups in order of first appearance."""
    groups: list[list[Candidate]] = []
    for cand in candidates:
        if cand.answer is None:
            continue
        for group in groups:
            if group[0].answer == cand.answer or equivalent(group[0].answer, cand.answer):  # type: ignore[arg-type]
                group.append(cand)
                break
        else:
            groups.append([cand])
    return groups


MAX_DENOMINATOR = 1_000_000


def exact(score: float | Fraction) -> Fraction:
    """The rational a score stands for.

    An LbT score is a mean of pass rates over a few exams, students and tests, so its true denominator
    is far below ``MAX_DENOMINATOR``; distinct such fractions differ by more than 1e-12, while a float's
    rounding error is near 1e-16, so the nearest fraction is the exact value.
    """
    return Fraction(score).limit_denominator(MAX_DENOMINATOR)


def _group_score(mode: SelectionMode, group: list[Candidate]) -> Fraction:
    scores = [exact(c.score) for c in group]
    if mode == "sc":
        return Fraction(len(group))
    if mode == "max":
        return max(scores)
    if mode == "sum":
        return sum(scores, Fraction(0))
    if mode == "avg":
        return sum(scores, Fraction(0)) / len(scores)
    raise ValueError(f"mode {mode!r} does not rank answer groups")


def select(
    mode: SelectionMode,
    candidates: Sequence[Candidate],
    equivalent: Equivalence,
    *,
    greedy: Candidate | None = None,
    tie_break: TieBreak = "first_seen",
) -> Selection:
    """The answer chosen by ``mode`` among ``candidates``."""
    if mode == "greedy":
        if greedy is None or greedy.answer is None:
            return Selection(mode, None, False, None)
        return Selection(mode, greedy.answer, greedy.correct, greedy.index, 1)
    groups = group_answers(candidates, equivalent)
    if not groups:
        return Selection(mode, None, False, None)
    later = 1 if tie_break == "last_seen" else -1
    order = {id(g): i for i, g in enumerate(groups)}
    best = max(groups, key=lambda g: (_group_score(mode, g), len(g), later * order[id(g)]))
    rep = max(best, key=lambda c: (exact(c.score), -c.index)) if mode == "max" else best[0]
    return Selection(mode, rep.answer, rep.correct, rep.index, len(best))


def select_all(
    modes: Sequence[SelectionMode],
    candidates: Sequence[Candidate],
    equivalent: Equivalence,
    *,
    greedy: Candidate | None = None,
    tie_break: TieBreak = "first_seen",
) -> dict[str, Selection]:
    return {mode: select(mode, candidates, equivalent, greedy=greedy, tie_break=tie_break) for mode in modes}
