"""The math examiner: extract a final answer, normalise it MATH-style, check equivalence.

Equivalence is normalised string equality (and a few other exact in-process tests), else symbolic
equality by math-verify, which runs in worker processes so that every check ends within a bound
(``timeout_s``: 2 s, or ``LBT_GRADE_TIMEOUT_S``) whatever the answer is; a check that reaches the
bound counts as not equivalent and says so. Extraction is linear in the reply's length.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass

from lbt_agents.errors import ConfigError
from lbt_agents.grading._bounded import SymbolicResult, shared_pool
from lbt_agents.grading.base import grader
from lbt_agents.types import Problem, TaskKind, Verdict

FINAL_MARKER = "[[Final Answer]]:"
DEFAULT_TIMEOUT_S = 2.0
TIMEOUT_ENV = "LBT_GRADE_TIMEOUT_S"
_MAX_VERIFY_CHARS = 400
_MAX_REPLY_CHARS = 1_000_000
"""Only a reply's last million characters are searched for its answer."""
_INLINE_CHARS = 20_000
"""Longer replies are searched in a thread, off the event loop."""
_BOX_START = re.compile(r"\\(?:boxed|fbox)")
_BOX_WORD = re.compile(r" +([^\s$]+)")
_BRACE = re.compile(r"(?<!\\)[{}]")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces), or ``\\boxed 5``."""
    args = [m.end() for m in _BOX_START.finditer(text)]
    closing: dict[int, int] | None = None
    for pos in reversed(args):
        if text.startswith(" ", pos):  # \boxed 5
            m = _BOX_WORD.match(text, pos)
            if m:
                return m.group(1).strip()
        elif text.startswith("{", pos):
            if closing is None:
                closing = _closing_braces(text, [p for p in args if text.startswith("{", p)])
            end = closing.get(pos)
            if end is not None:
                return text[pos + 1 : end].strip()
    return None


def _closing_braces(text: str, opens: list[int]) -> dict[int, int]:
    """Where each brace at ``opens`` is closed (unescaped braces counted; one pass)."""
    wanted, stack, closing = set(opens), [], {}
    for m in _BRACE.finditer(text, opens[0]):
        i = m.start()
        if text[i] == "{":
            stack.append(i)
        elif stack:
            j = stack.pop()
            if j in wanted:
                closing[j] = i
    return closing


_FALLBACKS = (
    re.compile(r"[Tt]he (?:final )?answer is[:\s]*(.+)"),
    re.compile(r"####\s*(.+)"),
    re.compile(r"^[^\S\n]*\**(?:Final )?Answer\**\s*:\**\s*(.+)", re.IGNORECASE | re.MULTILINE),
)


def extract_math_answer(reply: str) -> str | None:
    """The final answer of a reply: the last ``[[Final Answer]]:`` line, else the last
    ``\\boxed{}``, else "The answer is X" / "#### X" / "Answer: X"; ``None`` if none."""
    if not reply:
        return None
    reply = reply[-_MAX_REPLY_CHARS:]
    idx = reply.rfind(FINAL_MARKER)
    if idx != -1:
        line = reply[idx + len(FINAL_MARKER) :].strip().split("\n", 1)[0]
        answer = last_boxed(line) or line
        return _tidy(answer)
    boxed = last_boxed(reply)
    if boxed is not None:
        return _tidy(boxed)
    for pattern in _FALLBACKS:
        last = None
        for last in pattern.finditer(reply):  # noqa: B007 - the last match is the answer
            pass
        if last is not None:
            return _tidy(last.group(1).strip().split("\n", 1)[0])
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
    if s.endswith("0") and re.fullmatch(r"-?\d+\.\d*", s):
        s = s.rstrip("0").rstrip(".")
    s = re.sub(r"\\(?:p|b|v|B|V)?matrix", "matrix", s)
    return s


def grade_timeout_s(value: float | str | None = None) -> float:
    """The bound on one check in seconds: ``value``, else ``LBT_GRADE_TIMEOUT_S``, else 2."""
    source = "timeout_s"
    if value is None:
        value = os.environ.get(TIMEOUT_ENV, "").strip() or DEFAULT_TIMEOUT_S
        source = TIMEOUT_ENV
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not 0 < seconds <= 3600:  # also false for nan
        raise ConfigError(f"{source} must be a number of seconds in (0, 3600], got {value!r}")
    return seconds


@dataclass(frozen=True)
class MathCheck:
    """Whether two answers are equal, and how that was decided (or why it could not be)."""

    equal: bool
    detail: str


_EQUIVALENT = MathCheck(True, "equivalent")
_DIFFERENT = MathCheck(False, "not equivalent")
_INTEGER = re.compile(r"-?\d{1,15}")
_CHOICES = frozenset("ABCDE")


def _timed_out(timeout_s: float) -> MathCheck:
    return MathCheck(False, f"grading timed out after {float(timeout_s)!r} s")


def _quick_check(gold: str, pred: str) -> MathCheck | tuple[str, str]:
    """The answer where string tests settle it, else the cleaned pair for the symbolic check."""
    if gold is None or pred is None:
        return _DIFFERENT
    norm_gold, norm_pred = normalize_math_answer(gold), normalize_math_answer(pred)
    if norm_gold == norm_pred:
        return _EQUIVALENT
    if _INTEGER.fullmatch(norm_gold) and _INTEGER.fullmatch(norm_pred):
        return _EQUIVALENT if int(norm_gold) == int(norm_pred) else _DIFFERENT
    if norm_gold in _CHOICES and norm_pred in _CHOICES:
        return _DIFFERENT
    a, b = clean_math_answer(gold), clean_math_answer(pred)
    if not a or not b or len(a) > _MAX_VERIFY_CHARS or len(b) > _MAX_VERIFY_CHARS:
        return _DIFFERENT
    return a, b


class _Lru(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: object, value: object) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


class _Memory:
    """What earlier symbolic checks found (or are finding), so that none runs twice and a slow answer
    costs one bound.

    When a check times out and one side has finished a check in time before, the other side is
    remembered as slow: later checks with it time out at once (for the same or a smaller bound).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: _Lru = _Lru(16384)  # (a, b) -> (timeout_s or None, MathCheck)
        self._slow: _Lru = _Lru(4096)  # answer -> the bound it overran
        self._finished: _Lru = _Lru(16384)  # answers that finished a check in time
        self._in_flight: dict[tuple[str, str], tuple[float, Future]] = {}

    def submit(self, a: str, b: str, timeout_s: float) -> Future:
        """The symbolic check of ``a`` and ``b``: the one in flight when there is one, else a new one."""
        with self._lock:
            running = self._in_flight.get((a, b))
            if running is not None and running[0] >= timeout_s:
                return running[1]
            future = shared_pool().submit(a, b, timeout_s)
            self._in_flight[(a, b)] = (timeout_s, future)
        future.add_done_callback(lambda done: self._landed((a, b), done))
        return future

    def _landed(self, key: tuple[str, str], done: Future) -> None:
        with self._lock:
            if key in self._in_flight and self._in_flight[key][1] is done:
                del self._in_flight[key]

    def recall(self, a: str, b: str, timeout_s: float) -> MathCheck | None:
        with self._lock:
            known = self._results.get((a, b))
            if known is not None and (known[0] is None or known[0] >= timeout_s):
                return known[1]
            overran = max(self._slow.get(a, 0.0), self._slow.get(b, 0.0))
        return _timed_out(timeout_s) if overran >= timeout_s else None

    def learn(self, a: str, b: str, timeout_s: float, result: SymbolicResult, *, a_is_reference: bool) -> MathCheck:
        if result.error is not None:
            return MathCheck(False, f"symbolic check failed: {result.error}")
        with self._lock:
            if result.timed_out:
                check = _timed_out(timeout_s)
                self._results.put((a, b), (timeout_s, check))
                for side, other in ((a, b), (b, a)):
                    other_finished = other in self._finished or (a_is_reference and other == a)
                    if other_finished and side not in self._finished:
                        self._slow.put(side, max(timeout_s, self._slow.get(side, 0.0)))
                return check
            check = _EQUIVALENT if result.equal else _DIFFERENT
            self._results.put((a, b), (None, check))
            self._finished.put(a, True)
            self._finished.put(b, True)
            return check


    def forget_in_flight(self) -> None:
        """After ``fork``: the parent's checks in flight will never land here."""
        self._lock = threading.Lock()
        self._in_flight = {}


_MEMORY = _Memory()
os.register_at_fork(after_in_child=_MEMORY.forget_in_flight)


def check_math_answer(
    gold: str, pred: str, *, timeout_s: float | None = None, gold_is_reference: bool = False
) -> MathCheck:
    """Whether ``pred`` is the same answer as ``gold``; returns within ``timeout_s`` of a grading
    worker taking the check (starting a worker, once per process, comes on top).

    ``gold_is_reference``: ``gold`` is ground truth, so a time-out is ``pred``'s doing and later
    checks of ``pred`` time out at once."""
    timeout_s = grade_timeout_s(timeout_s)
    settled = _settled(gold, pred, timeout_s)
    if isinstance(settled, MathCheck):
        return settled
    result = _MEMORY.submit(*settled, timeout_s).result()
    return _MEMORY.learn(*settled, timeout_s, result, a_is_reference=gold_is_reference)


async def check_math_answer_async(
    gold: str, pred: str, *, timeout_s: float | None = None, gold_is_reference: bool = False
) -> MathCheck:
    """:func:`check_math_answer` without blocking the event loop."""
    timeout_s = grade_timeout_s(timeout_s)
    if len(pred or "") > _INLINE_CHARS:
        settled = await asyncio.to_thread(_settled, gold, pred, timeout_s)
    else:
        settled = _settled(gold, pred, timeout_s)
    if isinstance(settled, MathCheck):
        return settled
    result = await asyncio.shield(asyncio.wrap_future(_MEMORY.submit(*settled, timeout_s)))  # others may share it
    return _MEMORY.learn(*settled, timeout_s, result, a_is_reference=gold_is_reference)


def _settled(gold: str, pred: str, timeout_s: float) -> MathCheck | tuple[str, str]:
    """The answer of string tests or of an earlier check, else the pair to check symbolically."""
    quick = _quick_check(gold, pred)
    if isinstance(quick, MathCheck):
        return quick
    return _MEMORY.recall(*quick, timeout_s) or quick


def math_equivalent(gold: str, pred: str, *, timeout_s: float | None = None) -> bool:
    """Whether ``pred`` is the same answer as ``gold`` (normalised or symbolic equality, bounded)."""
    return check_math_answer(gold, pred, timeout_s=timeout_s).equal


class MathGrader:
    """Grader for ``kind: math``: exact 1/0 on the final answer, each check bounded by ``timeout_s``.

    ``timeout_s`` defaults to ``LBT_GRADE_TIMEOUT_S`` or 2 s; a grade that reaches it is wrong, with
    ``detail`` "grading timed out after ... s".
    """

    kind: TaskKind = "math"

    def __init__(self, timeout_s: float | None = None) -> None:
        self.timeout_s = timeout_s

    @property
    def timeout_s(self) -> float:
        """The bound on one check, in seconds (``None`` sets the default); checked when set."""
        return self._timeout_s

    @timeout_s.setter
    def timeout_s(self, value: float | None) -> None:
        self._timeout_s = grade_timeout_s(value)

    def extract(self, reply: str) -> str | None:
        return extract_math_answer(reply)

    def normalize(self, answer: str) -> str:
        return normalize_math_answer(answer)

    def equivalent(self, a: str, b: str) -> bool:
        return check_math_answer(a, b, timeout_s=self.timeout_s).equal

    def warm_up(self) -> None:
        """Start the grading workers now, so that the first symbolic check need not wait for them."""
        shared_pool().start()

    def grade_sync(self, problem: Problem, reply: str, *, truncated: bool = False) -> Verdict:
        """:meth:`grade` without the event loop."""
        answer = self.extract(reply or "")
        check = None
        if answer is not None:
            check = check_math_answer(problem["answer"], answer, timeout_s=self.timeout_s, gold_is_reference=True)
        return _verdict(answer, check, truncated)

    async def grade(self, problem: Problem, reply: str, *, truncated: bool = False) -> Verdict:
        reply = reply or ""
        answer = await asyncio.to_thread(self.extract, reply) if len(reply) > _INLINE_CHARS else self.extract(reply)
        check = None
        if answer is not None:
            check = await check_math_answer_async(
                problem["answer"], answer, timeout_s=self.timeout_s, gold_is_reference=True
            )
        return _verdict(answer, check, truncated)


def _verdict(answer: str | None, check: MathCheck | None, truncated: bool) -> Verdict:
    correct = check is not None and check.equal
    return Verdict(
        answer=answer,
        correct=correct,
        score=1.0 if correct else 0.0,
        truncated=truncated,
        detail="no final answer" if check is None else check.detail,
    )


@grader("math")
def _math_grader() -> MathGrader:
    return MathGrader()
