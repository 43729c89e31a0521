"""Fuzz: thousands of random and hostile replies; every grade finishes within its bound, none crashes."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from lbt_agents.grading._bounded import shared_pool
from lbt_agents.grading.label import LabelGrader
from lbt_agents.grading.math import MathGrader
from lbt_agents.types import Problem

BOUND_S = 1.0
SLACK_S = 0.6
"""Time past the bound allowed for the round trip to a worker and a long reply's extraction."""
REPLIES = 3000
SEED = 16

GOLDS = ["5", "\\frac{1}{2}", "(1,2)", "\\sqrt{2}", "x^2+1", "B", "2\\pi", "[1,2)", "10^{10}", "-3"]
TOKENS = [
    "\\boxed{", "\\fbox{", "\\boxed ", "}", "{", "\\{", "\\}", "\\frac", "\\dfrac", "\\sqrt", "^", "_", "(", ")",
    "[", "]", ",", "=", "+", "-", "*", "/", "!", "\\pi", "e", "x", "y", "\\infty", "\\left(", "\\right)", "\\left",
    "\\right", "\\text{", "\\mathrm{", "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\\\", "$", "$$", "\\(", "\\)",
    "\\[", "\\]", "\\Gamma", "\\binom", "\\sum_{k=1}^{", "\\int", "\\cdot", "\\times", "%", "\\%", "^\\circ", "\\,",
    "\\!", "\\ ", " ", "\n", "\t", "\x00", "[[Final Answer]]:", "The answer is", "####", "**Answer:**",
    "Final Answer:", "10", "9", "0", "1", "2", "3.5", "1,000", "...", "é", "∞", "\ud800", "\\", "\\begin{", "\\end{",
]  # fmt: skip
BOMB_BASES = ["10", "9", "3", "e", "x", "\\pi", "7"]
FRAMES = ["[[Final Answer]]: {}", "so \\boxed{{{}}}.", "The answer is {}", "#### {}", "**Answer:** ${}$"]


def _bomb(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:  # a power tower
        return "^{".join(rng.choice(BOMB_BASES) for _ in range(rng.randint(3, 6))) + "}" * 5
    if kind == 1:
        return f"({rng.choice(['10', '9'])}^{{{rng.randint(7, 12)}}})!"
    if kind == 2:
        return f"\\Gamma(10^{{{rng.randint(8, 15)}}})"
    if kind == 3:
        return f"\\binom{{10^{{{rng.randint(8, 12)}}}}}{{10^{{{rng.randint(4, 6)}}}}}"
    if kind == 4:
        return f"\\prod_{{k=1}}^{{10^{{{rng.randint(8, 12)}}}}} k"
    return f"{rng.randint(2, 9)}^{{{rng.randint(2, 9)}^{{{rng.randint(2, 9)}^{{{rng.randint(5, 9)}}}}}}}"


def _hostile(rng: random.Random) -> str:
    kind = rng.randrange(9)
    if kind == 0:
        return "x" + "\n" * 20_000 + "y"
    if kind == 1:
        return "\\boxed{" * 4000
    if kind == 2:
        return "\\boxed{" + "{" * 20_000 + "1" + "}" * 20_000 + "}"
    if kind == 3:
        return "".join(rng.choice("{}\\$") for _ in range(50_000))
    if kind == 4:
        return "\x00" * rng.randint(1, 10_000) + "[[Final Answer]]: \x005\x00"
    if kind == 5:
        return "Answer:" + "\n \t" * 10_000
    if kind == 6:
        return "word " * 200_000 + "\\boxed{5}"
    if kind == 7:
        return "\\frac{" * 60 + "1" + "}{2}" * 60
    return "1." + "0" * rng.randint(1000, 50_000) + "1"


def _soup(rng: random.Random) -> str:
    return "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 200)))


def _noise(rng: random.Random) -> str:
    return "".join(chr(rng.randrange(0, 0x3000)) for _ in range(rng.randint(0, 3000)))


def _near_miss(rng: random.Random, gold: str) -> str:
    variants = [gold, f"{gold}.", f"\\text{{{gold}}}", f"\\left({gold}\\right)", f"{gold}+0", f"2*{gold}/2"]
    return rng.choice(FRAMES).format(rng.choice(variants))


def replies(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (gold, reply) pairs: mostly random LaTeX soup and noise, some near misses, bombs, hostile ones."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        gold = rng.choice(GOLDS)
        roll = rng.random()
        if roll < 0.012:
            reply = rng.choice(FRAMES).format(_bomb(rng))
        elif roll < 0.03:
            reply = _hostile(rng)
        elif roll < 0.25:
            reply = _near_miss(rng, gold)
        elif roll < 0.45:
            reply = _noise(rng)
        else:
            reply = _soup(rng)
        out.append((gold, reply))
    return out


def _problem(gold: str, kind: str = "math") -> Problem:
    return Problem(id="fuzz", question="q", answer=gold, kind=kind, meta={"choices": ["valid", "invalid"]})  # type: ignore[typeddict-item]


async def _grade_all(grader, cases, concurrency: int) -> list[tuple[float, dict]]:
    gate = asyncio.Semaphore(concurrency)

    async def one(gold: str, reply: str) -> tuple[float, dict]:
        async with gate:
            start = time.perf_counter()
            verdict = await grader.grade(_problem(gold, grader.kind), reply, truncated=False)
            return time.perf_counter() - start, verdict

    return await asyncio.gather(*(one(g, r) for g, r in cases))


def _check(results, cases) -> None:
    assert len(results) == len(cases)
    slow = [(round(s, 2), r[:80]) for (s, _), (_, r) in zip(results, cases, strict=True) if s > BOUND_S + SLACK_S]
    assert not slow, f"{len(slow)} grades past {BOUND_S} s + {SLACK_S} s: {slow[:5]}; killed: {shared_pool().kills}"
    for _, verdict in results:
        assert isinstance(verdict["correct"], bool) and verdict["score"] in (0.0, 1.0)
        assert verdict["answer"] is None or isinstance(verdict["answer"], str)
        assert verdict["correct"] == (verdict["score"] == 1.0)


def test_fuzzed_math_grades_are_bounded_and_never_crash():
    cases = replies(REPLIES, SEED)
    grader = MathGrader(timeout_s=BOUND_S)
    pool = shared_pool()
    pool.start()  # starting the workers is not part of any grade's bound
    start = time.perf_counter()
    results = asyncio.run(_grade_all(grader, cases, concurrency=pool.size))
    wall = time.perf_counter() - start
    _check(results, cases)
    details = [v["detail"] for _, v in results]
    timed_out = sum("timed out" in d for d in details)
    assert timed_out >= 5, "the bombs must reach the bound (else this test proves nothing)"
    assert sum(v["correct"] for _, v in results) >= 100, "the near misses must still be graded right"
    assert not [d for d in details if d.startswith("symbolic check failed")]
    print(f"{REPLIES} replies graded in {wall:.1f} s; {timed_out} timed out")


def test_fuzzed_label_grades_never_crash():
    cases = replies(REPLIES // 3, SEED + 1)
    results = asyncio.run(_grade_all(LabelGrader(), cases, concurrency=4))
    _check(results, cases)


@pytest.mark.parametrize("seed", range(3))
def test_fuzzed_equivalence_is_bounded(seed):
    grader = MathGrader(timeout_s=BOUND_S)
    grader.warm_up()
    rng = random.Random(seed)
    pairs = [(rng.choice(GOLDS), _bomb(rng)) for _ in range(2)]
    pairs += [(_soup(rng)[:300], _soup(rng)[:300]) for _ in range(40)]
    for a, b in pairs:
        start = time.perf_counter()
        assert grader.equivalent(a, b) in (True, False)
        took = time.perf_counter() - start
        assert took <= BOUND_S + SLACK_S, (a, b, took, f"workers killed so far: {shared_pool().kills}")
