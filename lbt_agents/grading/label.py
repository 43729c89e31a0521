"""The label examiner: a reply's label is matched against the problem's choices.

A mention of a choice counts as its opposite when a negation governs it (``not valid`` is
``invalid``, ``isn't true`` is ``false``) and not at all inside ``neither ... nor ...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from lbt_agents.grading.base import grader
from lbt_agents.grading.math import FINAL_MARKER, last_boxed
from lbt_agents.types import Problem, TaskKind, Verdict

_SYNONYMS: tuple[frozenset[str], ...] = (
    frozenset({"yes", "true", "valid", "correct", "right"}),
    frozenset({"no", "false", "invalid", "incorrect", "wrong"}),
)
"""Two groups of opposite meaning: a word of one group negated means the other group."""

_NEGATORS = frozenset({"not", "never", "no", "cannot", "hardly"})
_EXCLUDERS = frozenset({"neither", "nor"})
_BRIDGES = frozenset(
    "a an the be been being is are was were it it's its this that argument conclusion statement answer "
    "really actually necessarily logically deductively strictly formally entirely completely quite truly "
    "fully at all considered deemed i we think believe say find would will could can should may might".split()
)
"""Words that may stand between a negation and the choice it negates (``not logically valid``)."""
_MAX_BRIDGES = 4
_LOOKBACK_CHARS = 160
_MAX_MENTIONS = 200
"""Only a reply's last mentions are weighed (which keeps hostile replies cheap)."""
_TOKEN = re.compile(r"[a-z']+|[^\sa-z']")
_MARKUP = frozenset("*_`\"")
_OPPOSITE_PREFIXES = ("in", "im", "un", "il", "ir", "dis", "non", "non-", "non ", "not ")


def normalize_label(label: str) -> str:
    """Lower case, no markup, no surrounding punctuation or quotes."""
    s = last_boxed(label) or label
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
    s = s.replace("*", "").replace("`", "").replace("$", "")
    return s.strip().strip(" .,:;!?\"'()[]").strip().lower()


def match_choice(text: str, choices: Sequence[str]) -> str | None:
    """The choice that ``text`` names: exactly, by a synonym, or by its last mention
    (a negated mention names the opposite choice)."""
    norm = normalize_label(text)
    by_norm = {normalize_label(c): c for c in choices}
    if norm in by_norm:
        return by_norm[norm]
    synonym = _via_synonym(norm, by_norm)
    if synonym is not None:
        return synonym
    return _last_mention(text, choices) or _last_synonym_mention(text, by_norm)


def _via_synonym(norm: str, by_norm: dict[str, str]) -> str | None:
    for group in _SYNONYMS:
        if norm in group:
            hits = [choice for key, choice in by_norm.items() if key in group]
            if len(hits) == 1:
                return hits[0]
    return None


def opposite_choice(choice: str, choices: Sequence[str]) -> str | None:
    """The choice that means "not ``choice``": ``invalid`` for ``valid`` (and back), ``No`` for ``Yes``,
    the other one of two choices; ``None`` when no single choice does."""
    by_norm = {normalize_label(c): c for c in choices}
    return _opposite(normalize_label(choice), by_norm)


def _opposite(norm: str, by_norm: dict[str, str]) -> str | None:
    hits = {
        choice
        for key, choice in by_norm.items()
        if key != norm and any(key == p + norm or norm == p + key for p in _OPPOSITE_PREFIXES)
    }
    if not hits:
        for group, other in (_SYNONYMS, _SYNONYMS[::-1]):
            if norm in group:
                hits = {choice for key, choice in by_norm.items() if key in other}
    if not hits and len(by_norm) == 2 and norm in by_norm:
        hits = {choice for key, choice in by_norm.items() if key != norm}
    return hits.pop() if len(hits) == 1 else None


def _polarity(text: str, start: int) -> int:
    """+1 for a plain mention at ``start``, -1 for a negated one, 0 inside ``neither ... nor``."""
    before = text[max(0, start - _LOOKBACK_CHARS) : start].lower().replace("\u2019", "'")
    bridges = 0
    for token in reversed(_TOKEN.findall(before)):
        if token in _MARKUP:
            continue
        if token in _EXCLUDERS:
            return 0
        if token in _NEGATORS or token.endswith("n't"):
            return -1
        if token not in _BRIDGES or bridges == _MAX_BRIDGES:
            return 1
        bridges += 1
    return 1


def _mention_positions(text: str, words: Sequence[str]) -> list[tuple[int, str]]:
    """The last :data:`_MAX_MENTIONS` whole-word mentions of ``words`` (any case), in order."""
    words = sorted({w for w in words if w}, key=len, reverse=True)  # the longest of two at one place
    if not words:
        return []
    alternatives = "|".join(f"(?P<w{i}>{re.escape(w)})" for i, w in enumerate(words))
    pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", flags=re.IGNORECASE)
    window = 4096
    while True:  # search the reply's tail, longer each time, until it holds enough mentions
        start = max(0, len(text) - window)
        found = [(m.start(), words[int(m.lastgroup[1:])]) for m in pattern.finditer(text, start)]  # type: ignore[index]
        if len(found) >= _MAX_MENTIONS or start == 0:
            return found[-_MAX_MENTIONS:]
        window *= 8


def _last_named(
    text: str, words: Sequence[str], name: Callable[[str], str | None], by_norm: dict[str, str]
) -> str | None:
    for start, word in reversed(_mention_positions(text, words)):
        polarity = _polarity(text, start)
        choice = name(word) if polarity else None
        if choice is not None and polarity < 0:
            choice = _opposite(normalize_label(choice), by_norm)
        if choice is not None:
            return choice
    return None


def _last_mention(text: str, choices: Sequence[str]) -> str | None:
    by_norm = {normalize_label(c): c for c in choices}
    return _last_named(text, [c for c in choices if c.strip()], lambda c: c, by_norm)


def _last_synonym_mention(text: str, by_norm: dict[str, str]) -> str | None:
    words = sorted({w for group in _SYNONYMS for w in group})
    return _last_named(text, words, lambda w: _via_synonym(w, by_norm), by_norm)


def extract_label(reply: str, choices: Sequence[str] | None = None) -> str | None:
    """The label after the last ``[[Final Answer]]:`` (mapped onto ``choices`` when given);
    without the marker, the last mention of one of ``choices``; ``None`` if none."""
    if not reply:
        return None
    idx = reply.rfind(FINAL_MARKER)
    if idx != -1:
        line = reply[idx + len(FINAL_MARKER) :].strip().split("\n", 1)[0]
        if not choices:
            return normalize_label(line) or None
        return match_choice(line, choices)
    if not choices:
        return None
    return _last_mention(reply, choices)


class LabelGrader:
    """Grader for ``kind: label``: 1/0 on the label, choices from ``problem["meta"]["choices"]``."""

    kind: TaskKind = "label"

    def extract(self, reply: str, choices: Sequence[str] | None = None) -> str | None:
        return extract_label(reply, choices)

    def normalize(self, answer: str) -> str:
        return normalize_label(answer)

    def equivalent(self, a: str, b: str) -> bool:
        return normalize_label(a) == normalize_label(b)

    def grade_sync(self, problem: Problem, reply: str, *, truncated: bool = False) -> Verdict:
        """:meth:`grade` without the event loop."""
        choices = (problem.get("meta") or {}).get("choices") or None
        answer = self.extract(reply or "", choices)
        correct = answer is not None and self.equivalent(problem["answer"], answer)
        detail = "no label" if answer is None else ("match" if correct else "mismatch")
        return Verdict(
            answer=answer, correct=correct, score=1.0 if correct else 0.0, truncated=truncated, detail=detail
        )

    async def grade(self, problem: Problem, reply: str, *, truncated: bool = False) -> Verdict:
        return self.grade_sync(problem, reply, truncated=truncated)


@grader("label")
def _label_grader() -> LabelGrader:
    return LabelGrader()
