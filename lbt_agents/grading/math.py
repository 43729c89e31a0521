"""The math examiner: extract a final answer, normalise it MATH-style, check equivalence.

Equivalence is normalised string equality, else symbolic equality by math-verify
(run without its signal-based timeouts, so it is safe in threads and event loops;
over-long answers are never handed to it).
"""

from __future__ import annotations

import asyncio
import re
from functools import lru_cache

from lbt_agents.grading.base import grader
from lbt_agents.types import Problem, TaskKind, Verdict

FINAL_MARKER = "[[Final Answer]]:"
_MAX_VERIFY_CHARS = 400
_BOX_COMMANDS = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces), or ``\\boxed 5``."""
    best: tuple[int, str] | None = None
    for cmd in _BOX_COMMANDS:
        start = text.rfind(cmd)
        while start != -1:
            content = _box_content(text, start + len(cmd))
            if content is not None:
                if best is None or start > best[0]:
                    best = (start, content)
                break
            start = text.rfind(cmd, 0, start)
    return None if best is None else best[1].strip()


def _box_content(text: str, pos: int) -> str | None:
    if pos < len(text) and text[pos] == " ":  # \boxed 5
        m = re.match(r" +([^\s$]+)", text[pos:])
        return m.group(1) if m else None
    if pos >= len(text) or text[pos] != "{":
        return None
    depth = 0
    for i in range(pos, len(text)):
        if text[i] == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif text[i] == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[pos + 1 : i]
    return None


_FALLBACKS = (
    re.compile(r"[Tt]he (?:final )?answer is[:\s]*(.+)"),
    re.compile(r"####\s*(.+)"),
    re.compile(r"(?:^|\n)\s*\**(?:Final )?Answer\**\s*:\**\s*(.+)", re.IGNORECASE),
)


def extract_math_answer(reply: str) -> str | None:
    """The final answer of a reply: the last ``[[Final Answer]]:`` line, else the last
    ``\\boxed{}``, else "The answer is X" / "#### X" / "Answer: X"; ``None`` if none."""
    if not reply:
        return None
    idx = reply.rfind(FINAL_MARKER)
    if idx != -1:
        line = reply[idx + len(FINAL_MARKER) :].strip().split("\n", 1)[0]
        answer = last_boxed(line) or line
        return _tidy(answer)
    boxed = last_boxed(reply)
    if boxed is not None:
        return _tidy(boxed)
    for pattern in _FALLBACKS:
        matches = pattern.findall(reply)
        if matches:
            return _tidy(matches[-1].strip().split("\n", 1)[0])
    return None


def _tidy(answer: str) -> str | None:
    s = answer.strip().strip("*").strip()
    if s.startswith("$") and s.endswith("$") and len(s) > 1:
        s = s.strip("$").strip()
    if s.startswith("\\(") and s.endswith("\\)"):
        s = s[2:-2].strip()
    if s.startswith("\\[") and s.endswith("\\]"):
        s = s[2:-2].strip()
    s = s.rstrip(".").strip()
    return s or None


_UNIT_WORDS = (
    "units?|degrees?|cm|centimeters?|m|meters?|km|kilometers?|mm|inches|inch|in|feet|foot|ft|yards?|miles?|"
    "sq(?:uare)? ?\\w+|cubic ?\\w+|hours?|minutes?|seconds?|days?|weeks?|years?|dollars?|cents?|"
    "pounds?|ounces?|grams?|kg|liters?|mph|people|students|ways|points?"
)
_TRAILING_TEXT = re.compile(r"(?<=\S)\s*\\(?:text|textbf|textrm|mathrm|mbox)\{[^{}]*\}\s*(?:\^\{?\d\}?)?$")
_TRAILING_UNIT = re.compile(rf"^(-?[\d.,]+(?:/\d+)?)\s*(?:{_UNIT_WORDS})(?:\^\{{?\d\}}?|\^\d)?$", re.IGNORECASE)
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox|operatorname)\{([^{}]*)\}")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_VAR_PREFIX = re.compile(r"^\\?[a-zA-Z](?:_\{?\w+\}?)?\s*=\s*(?=\S)")
_CHOICE = re.compile(r"^\(?([A-Ea-e])\)?$")


def clean_math_answer(answer: str) -> str:
    """Semantic clean-up that keeps the expression parseable (spaces kept)."""
    s = answer.strip()
    s = s.replace("\n", " ").replace("\\$", "").replace("$", "")
    s = re.sub(r"\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|\\displaystyle", "", s)
    s = re.sub(r"(?<!\\)\\[!,;:]", "", s)
    s = re.sub(r"(?<!\\)\\ ", " ", s)
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = s.replace("{,}", ",")
    s = re.sub(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°", "", s)
    s = s.replace("\\%", "").replace("%", "")
    s = _TRAILING_TEXT.sub("", s).strip()
    s = _TEXT_CMD.sub(r"\1", s).strip()
    s = s.rstrip(".").strip()
    m = _TRAILING_UNIT.match(s)
    if m:
        s = m.group(1)
    if s.count("=") == 1 and _VAR_PREFIX.match(s):
        s = _VAR_PREFIX.sub("", s, count=1)
    if _THOUSANDS.match(s.replace(" ", "")):
        s = s.replace(",", "").replace(" ", "")
    m = _CHOICE.match(s.strip())
    if m:
        s = m.group(1).upper()
    return s.strip()


def normalize_math_answer(answer: str) -> str:
    """A canonical string form of an answer (for exact comparison and voting)."""
    s = clean_math_answer(answer)
    s = s.replace(" ", "")
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac(\d)\{", r"\\frac{\1}{", s)
    m = re.fullmatch(r"(-?\d+)/(\d+)", s)
    if m:
        s = f"\\frac{{{m.group(1)}}}{{{m.group(2)}}}"
    s = re.sub(r"(?<![\d.])\.(\d)", r"0.\1", s)
    if re.fullmatch(r"-?\d+\.\d*?0+", s):
        s = s.rstrip("0").rstrip(".")
    s = re.sub(r"\\(?:p|b|v|B|V)?matrix", "matrix", s)
    return s


def _quiet_math_verify() -> None:
    """We disable math-verify's signal timeouts on purpose; silence its one-time warning."""
    import math_verify.grader
    import math_verify.parser

    math_verify.parser.TIMEOUT_WARNING_SHOWN = True
    math_verify.grader.TIMEOUT_WARNING_SHOWN = True


@lru_cache(maxsize=4096)
def _parse(text: str) -> tuple:
    from math_verify import parse

    _quiet_math_verify()

    try:
        return tuple(parse(f"${text}$", parsing_timeout=None))  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a malformed answer simply does not parse
        return ()


@lru_cache(maxsize=8192)
def _verify(gold: str, pred: str) -> bool:
    from math_verify import verify

    g, p = _parse(gold), _parse(pred)
    if not g or not p:
        return False
    try:
        return bool(verify(list(g), list(p), timeout_seconds=None))
    except Exception:  # noqa: BLE001
        return False


def math_equivalent(gold: str, pred: str) -> bool:
    """Whether ``pred`` is the same answer as ``gold`` (normalised or symbolic equality)."""
    if gold is None or pred is None:
        return False
    if normalize_math_answer(gold) == normalize_math_answer(pred):
        return True
    a, b = clean_math_answer(gold), clean_math_answer(pred)
    if not a or not b or len(a) > _MAX_VERIFY_CHARS or len(b) > _MAX_VERIFY_CHARS:
        return False
    return _verify(a, b)


class MathGrader:
    """Grader for ``kind: math``: exact 1/0 on the final answer."""

    kind: TaskKind = "math"

    def extract(self, reply: str) -> str | None:
        return extract_math_answer(reply)

    def normalize(self, answer: str) -> str:
        return normalize_math_answer(answer)

    def equivalent(self, a: str, b: str) -> bool:
        return math_equivalent(a, b)

    def grade_sync(self, problem: Problem, reply: str, *, truncated: bool = False) -> Verdict:
        """:meth:`grade` without the event loop."""
        answer = self.extract(reply or "")
        correct = answer is not None and self.equivalent(problem["answer"], answer)
        detail = "no final answer" if answer is None else ("equivalent" if correct else "not equivalent")
        return Verdict(
            answer=answer, correct=correct, score=1.0 if correct else 0.0, truncated=truncated, detail=detail
        )

    async def grade(self, problem: Problem, reply: str, *, truncated: bool = False) -> Verdict:
        # sympy can take a while: keep the event loop serving other requests meanwhile
        return await asyncio.to_thread(self.grade_sync, problem, reply, truncated=truncated)


@grader("math")
def _math_grader() -> MathGrader:
    return MathGrader()
