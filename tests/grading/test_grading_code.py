"""The code examiner: extraction, AST equivalence, and V/S scores from sandboxed runs."""

from __future__ import annotations

from pathlib import Path

import pytest

import lbt_agents.sandbox._isolation as iso
from lbt_agents.grading.base import get_grader
from lbt_agents.grading.code import CodeGrader, extract_program, normalize_program
from lbt_agents.sandbox import IsolationError, capabilities, set_default_isolation
from lbt_agents.types import Problem

needs_bwrap = pytest.mark.skipif(
    capabilities().bwrap is None,
    reason=f"the code grader runs only isolated and bubblewrap does not work here: {capabilities().detail}",
)

PROBLEM = Problem(
    id="demo/add",
    question="Write add(a, b).",
    answer="def add(a, b):\n    return a + b\n",
    kind="code",
    meta={
        "test_prelude": "from typing import *\n",
        "test_setup": "",
        "visible_tests": ["assert add(1, 2) == 3\n", "assert add(0, 0) == 0\n"],
        "hidden_tests": [
            "assert add(1, 2) == 3\n",
            "assert add(0, 0) == 0\n",
            "assert add(-5, 2) == -3\n",
            "assert add(10**20, 1) == 10**20 + 1\n",
        ],
    },
)


def reply(code: str) -> str:
    return f"Strategy: add them.\n[[Final Answer]]:\n```python\n{code}```\n"


def test_extract_prefers_python_block_after_marker() -> None:
    text = "```python\ndef add(a, b): return 0\n```\nthen\n[[Final Answer]]:\n```text\nnote\n```\n```python\nx = 1\n```"
    assert extract_program(text) == "x = 1\n"
    assert extract_program("no marker\n```\nprint(2)\n```\n") == "print(2)\n"
    assert extract_program("no code at all") is None
    assert extract_program("[[Final Answer]]:\n```python\ndef f():\n    return 1") == "def f():\n    return 1\n"  # cut off


def test_equivalence_ignores_comments_docstrings_and_format() -> None:
    g = CodeGrader()
    a = "def add(a, b):\n    '''Sum.'''\n    # comment\n    return a+b\n"
    b = "def add(a,b): return (a + b)\n"
    assert g.equivalent(a, b)
    assert not g.equivalent(a, "def add(a, b):\n    return b + a\n")
    assert normalize_program("def broken(:\n") == "def broken(:"


@needs_bwrap
async def test_correct_solution_full_scores() -> None:
    v = await get_grader("code").grade(PROBLEM, reply("def add(a, b):\n    return a + b\n"))
    assert v["correct"] and v["score"] == 1.0 and v["hidden_score"] == 1.0
    assert v["answer"] == "def add(a, b):\n    return a + b\n"


@needs_bwrap
async def test_partly_wrong_solution_v_and_s_scores() -> None:
    code = "def add(a, b):\n    return abs(a) + b if a < 10**10 else 0\n"  # wrong on negatives and huge numbers
    v = await CodeGrader().grade(PROBLEM, reply(code))
    assert v["score"] == 1.0 and v["correct"]  # all visible tests pass
    assert v["hidden_score"] == 0.5  # half of the hidden suite fails


@needs_bwrap
async def test_wrong_solution_scores_zero_and_reports_failure() -> None:
    v = await CodeGrader().grade(PROBLEM, reply("def add(a, b):\n    return a - b\n"))
    assert not v["correct"] and v["score"] == 0.5 and v["hidden_score"] == 0.25
    assert "AssertionError" in v["detail"]


@needs_bwrap
async def test_hostile_or_broken_replies_never_raise() -> None:
    g = CodeGrader()
    loop = await g.grade(PROBLEM, reply("while True:\n    pass\n"))
    assert loop["score"] == 0.0 and not loop["correct"]
    syntax = await g.grade(PROBLEM, reply("def add(a, b) return a\n"))
    assert syntax["score"] == 0.0 and "SyntaxError" in syntax["detail"]
    none = await g.grade(PROBLEM, "I do not know.", truncated=True)
    assert none["answer"] is None and none["truncated"] and none["score"] == 0.0
    exiting = await g.grade(PROBLEM, reply("import os\nos._exit(0)\n"))
    assert exiting["score"] == 0.0 and exiting["hidden_score"] == 0.0


@needs_bwrap
async def test_solution_that_loops_on_one_test_keeps_the_others() -> None:
    code = "def add(a, b):\n    while a < 0:\n        pass\n    return a + b\n"
    v = await CodeGrader(per_test_s=0.5).grade(PROBLEM, reply(code))
    assert v["score"] == 1.0 and v["hidden_score"] == 0.75


@pytest.fixture
def no_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(iso.ENV_VAR, raising=False)
    monkeypatch.setattr(iso, "_warned", False)
    set_default_isolation(None)
    capabilities.cache_clear()
    yield
    capabilities.cache_clear()


async def test_without_bubblewrap_the_grader_refuses_instead_of_grading(no_bwrap: None) -> None:
    with pytest.raises(IsolationError, match="needs bubblewrap"):  # a machine problem: never a silent "wrong"
        await CodeGrader().grade(PROBLEM, reply("def add(a, b):\n    return a + b\n"))
    with pytest.raises(IsolationError):
        await CodeGrader().grade(PROBLEM, "no code at all")
    v = await CodeGrader(isolation="bare").grade(PROBLEM, reply("def add(a, b):\n    return a + b\n"))
    assert v["correct"] and v["hidden_score"] == 1.0 and "UNCONFINED" in v["detail"]


@needs_bwrap
async def test_all_pass_rule_scores_an_exam_one_only_when_every_visible_test_passes() -> None:
    paper = Problem(**{**PROBLEM, "meta": {**PROBLEM["meta"], "exam_score": "all_pass"}})  # type: ignore[typeddict-item]
    half = await CodeGrader().grade(paper, reply("def add(a, b):\n    return a - b\n"))
    assert half["score"] == 0.0 and not half["correct"] and half["hidden_score"] == 0.25  # fraction: 0.5
    full = await CodeGrader().grade(paper, reply("def add(a, b):\n    return a + b\n"))
    assert full["score"] == 1.0 and full["hidden_score"] == 1.0
