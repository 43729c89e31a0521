"""The official M1 answer selection (MAJ/SC, MAX, SUM, AVG) with its tie rule.

Every TR-TA pair votes for its normalised answer, pairs without a marker too.
A pair's LbT score is an integer: how many of its exams passed.  Groups are
ranked by ``(mode value, votes)``; among full ties the group *first seen
latest* wins (the official code takes the last of a stable sort).  SUM is an
integer and AVG a ``Fraction``, so ties are exact, never float noise.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from lbt_agents.errors import ConfigError, DataError

_MODES = {"maj": "sc", "sc": "sc", "max": "max", "sum": "sum", "avg": "avg"}


@dataclass(frozen=True)
class Pair:
    """One TR-TA pair: its normalised answer and its number of passed exams."""

    answer: str
    passed: int | Fraction = 0


@dataclass
class AnswerGroup:
    """All pairs that give one exact normalised answer."""

    answer: str
    first_index: int
    votes: int = 0
    best: int | Fraction = 0
    total: int | Fraction = 0

    @property
    def mean(self) -> Fraction:
        return Fraction(self.total) / self.votes

    def value(self, mode: str) -> int | Fraction:
        return {
            "sc": self.votes,
            "max": self.best,
            "sum": self.total,
            "avg": self.mean,
        }[mode]


@dataclass(frozen=True)
class PaperSelection:
    mode: str
    answer: str
    index: int
    """The first pair giving the chosen answer (the one the official script grades)."""
    votes: int
    value: int | Fraction
    """The winning group's mode value: votes, best score, score sum or exact mean."""


def _exact(score: object, index: int) -> int | Fraction:
    if isinstance(score, bool) or not isinstance(score, numbers.Rational):
        raise DataError(
            f"pair {index}: LbT score {score!r} is not an integer count (or Fraction); "
            "the paper profile compares scores exactly"
        )
    if score < 0:
        raise DataError(f"pair {index}: LbT score {score!r} is negative")
    return score  # type: ignore[return-value]


def group_pairs(pairs: Iterable[Pair]) -> list[AnswerGroup]:
    """Pairs grouped by exact answer string, groups in order of first appearance."""
    groups: dict[str, AnswerGroup] = {}
    for index, pair in enumerate(pairs):
        score = _exact(pair.passed, index)
        group = groups.get(pair.answer)
        if group is None:
            group = groups[pair.answer] = AnswerGroup(pair.answer, index, best=score)
        group.votes += 1
        group.best = max(group.best, score)
        group.total += score
    return list(groups.values())


def _mode(mode: str) -> str:
    try:
        return _MODES[mode.lower()]
    except (KeyError, AttributeError):
        raise ConfigError(
            f"selection mode {mode!r} is not one of maj, sc, max, sum, avg (greedy ranks no groups)"
        ) from None


def select(mode: str, candidates: Sequence[Pair]) -> PaperSelection:
    """The answer ``mode`` chooses among ``candidates``, by the official tie rule."""
    canonical = _mode(mode)
    groups = group_pairs(candidates)
    if not groups:
        raise DataError("no TR-TA pairs to select an answer from")
    winner = groups[0]
    for group in groups[1:]:
        if (group.value(canonical), group.votes) >= (
            winner.value(canonical),
            winner.votes,
        ):
            winner = group
    return PaperSelection(mode, winner.answer, winner.first_index, winner.votes, winner.value(canonical))


def select_all(modes: Iterable[str], candidates: Sequence[Pair]) -> dict[str, PaperSelection]:
    """``select`` for each mode."""
    return {mode: select(mode, candidates) for mode in modes}
