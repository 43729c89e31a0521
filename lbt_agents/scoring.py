"""Answer selection: greedy, self-consistency (SC) and M1's MAX, SUM and AVG.

Teacher answers are grouped by equivalence.  Each mode ranks the groups:

- ``sc``:  by vote count (number of TR-TA pairs giving that answer);
- ``max``: by the best LbT score in the group (the best pair's answer);
- ``sum``: by the sum of LbT scores (a score-weighted vote);
- ``avg``: by the mean LbT score.

Ties go to the group with more votes (the paper's rule), then to the answer
that appeared first.  Pairs without an answer take no part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from lbt_agents.config import SelectionMode

Equivalence = Callable[[str, str], bool]


@dataclass(frozen=True)
class Candidate:
    """One TR-TA pair as selection sees it."""

    index: int
    answer: str | None
    correct: bool
    score: float = 0.0
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


def _group_score(mode: SelectionMode, group: list[Candidate]) -> float:
    scores = [c.score for c in group]
    if mode == "sc":
        return float(len(group))
    if mode == "max":
        return max(scores)
    if mode == "sum":
        return sum(scores)
    if mode == "avg":
        return sum(scores) / len(scores)
    raise ValueError(f"mode {mode!r} does not rank answer groups")


def select(
    mode: SelectionMode,
    candidates: Sequence[Candidate],
    equivalent: Equivalence,
    *,
    greedy: Candidate | None = None,
) -> Selection:
    """The answer chosen by ``mode`` among ``candidates``."""
    if mode == "greedy":
        if greedy is None or greedy.answer is None:
            return Selection(mode, None, False, None)
        return Selection(mode, greedy.answer, greedy.correct, greedy.index, 1)
    groups = group_answers(candidates, equivalent)
    if not groups:
        return Selection(mode, None, False, None)
    order = {id(g): i for i, g in enumerate(groups)}
    best = max(groups, key=lambda g: (_group_score(mode, g), len(g), -order[id(g)]))
    rep = max(best, key=lambda c: (c.score, -c.index)) if mode == "max" else best[0]
    return Selection(mode, rep.answer, rep.correct, rep.index, len(best))


def select_all(
    modes: Sequence[SelectionMode],
    candidates: Sequence[Candidate],
    equivalent: Equivalence,
    *,
    greedy: Candidate | None = None,
) -> dict[str, Selection]:
    return {mode: select(mode, candidates, equivalent, greedy=greedy) for mode in modes}
