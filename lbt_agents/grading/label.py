"""The label examiner: a reply's label is matched against the problem's choices."""

from __future__ import annotations

import re
from collections.abc import Sequence

from lbt_agents.grading.base import grader
from lbt_agents.grading.math import FINAL_MARKER, last_boxed
from lbt_agents.types import Problem, TaskKind, Verdict

_SYNONYMS: tuple[frozenset[str], ...] = (
    frozenset({"yes", "true", "valid", "correct", "right"}),
    frozenset({"no", "false", "invalid", "incorrect", "wrong"}),
)


def normalize_label(label: str) -> str:
    """Lower case, no markup, no surrounding punctuation or quotes."""
    s = last_boxed(label) or label
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
    s = s.replace("*", "").replace("`", "").replace("$", "")
    return s.strip().strip(" .,:;!?\"'()[]").strip().lower()


def match_choice(text: str, choices: Sequence[str]) -> str | None:
    """The choice that ``text`` names: exactly, by a synonym, or by its last mention."""
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


def _mention_positions(text: str, words: Sequence[str]) -> list[tuple[int, str]]:
    found = []
    for word in words:
        pattern = rf"(?<![\w-]){re.escape(word)}(?![\w-])"
        for m in re.finditer(pattern, text, flags=re.IGNORECASE):
            found.append((m.start(), word))
    return sorted(found)


def _last_mention(text: str, choices: Sequence[str]) -> str | None:
    found = _mention_positions(text, [c for c in choices if c.strip()])
    return found[-1][1] if found else None


def _last_synonym_mention(text: str, by_norm: dict[str, str]) -> str | None:
    words = sorted({w for group in _SYNONYMS for w in group})
    for _, word in reversed(_mention_positions(text, words)):
        hit = _via_synonym(word, by_norm)
        if hit is not None:
            return hit
    return None


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
