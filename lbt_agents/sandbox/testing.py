"""Run candidate code against test cases inside the sandbox: one process per candidate."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lbt_agents.sandbox._run import execute, run_sync
from lbt_agents.sandbox._types import DEFAULT_LIMITS, IsolationChoice, Limits, RunResult

_HARNESS = Path(__file__).with_name("_harness.py")


@dataclass(frozen=True)
class TestCase:
    """Python statements run after the candidate, in a copy of its namespace; pass = no exception."""

    __test__ = False  # not a pytest test class

    code: str
    name: str = ""


@dataclass(frozen=True)
class TestOutcome:
    """One test's result."""

    __test__ = False

    name: str
    passed: bool
    error: str | None = None


@dataclass(frozen=True)
class TestReport:
    """All tests of one candidate."""

    __test__ = False

    passed: int
    total: int
    outcomes: tuple[TestOutcome, ...]
    run: RunResult
    load_error: str | None = None
    """Why the prelude, the candidate or the setup failed to run (then every test fails)."""

    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    @property
    def all_passed(self) -> bool:
        return self.total > 0 and self.passed == self.total

    def to_json(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "total": self.total,
            "pass_rate": round(self.pass_rate, 4),
            "load_error": self.load_error,
            "failures": [{"name": o.name, "error": o.error} for o in self.outcomes if not o.passed][:20],
        }


def as_cases(tests: Sequence[TestCase | str] | str) -> list[TestCase]:
    """A test script (one test) or a list of cases/strings, as named test cases."""
    if isinstance(tests, str):
        return [TestCase(tests, "script")]
    return [t if isinstance(t, TestCase) else TestCase(t, f"test_{i}") for i, t in enumerate(tests)]


async def arun_tests(
    code: str,
    tests: Sequence[TestCase | str] | str,
    *,
    prelude: str = "",
    setup: str = "",
    limits: Limits = DEFAULT_LIMITS,
    per_test_s: float | None = None,
    isolation: IsolationChoice = "auto",
    require_isolation: bool = False,
    python: str | None = None,
) -> TestReport:
    """Run ``prelude``, ``code`` and ``setup`` in one namespace, then each test in a copy of it.

    All in ONE sandboxed process; per-test results come back on a side-channel fd, each
    line tagged with a per-run random nonce.  Tests that never reported (the process
    died or timed out) count as failed.
    """
    cases = as_cases(tests)
    nonce = secrets.token_hex(16)
    spec = {
        "nonce": nonce,
        "prelude": prelude,
        "setup": setup,
        "tests": [c.code for c in cases],
        "per_test_s": per_test_s if per_test_s is not None else min(5.0, limits.wall_s),
    }
    files = {"harness.py": _HARNESS.read_text(), "solution.py": code, "spec.json": json.dumps(spec)}
    run, side = await execute(
        files,
        "harness.py",
        limits=limits,
        isolation=isolation,
        require_isolation=require_isolation,
        python=python,
        side_channel=True,
    )
    results: dict[int, tuple[bool, str | None]] = {}
    load_error: str | None = None
    prefix = nonce + " "
    for line in side.decode("utf-8", errors="replace").splitlines():
        if not line.startswith(prefix):
            continue
        try:
            record = json.loads(line[len(prefix) :])
        except ValueError:
            continue
        if "load_error" in record:
            load_error = record["load_error"]
        elif isinstance(record.get("i"), int) and record["i"] not in results:
            results[record["i"]] = (bool(record.get("ok")), record.get("error"))
    outcomes = []
    for i, case in enumerate(cases):
        ok, error = results.get(i, (False, f"no result: the run ended with status {run.status} ({run.detail})"))
        outcomes.append(TestOutcome(case.name or f"test_{i}", ok, error))
    passed = sum(o.passed for o in outcomes)
    return TestReport(passed, len(cases), tuple(outcomes), run, load_error)


def run_tests(
    code: str,
    tests: Sequence[TestCase | str] | str,
    *,
    prelude: str = "",
    setup: str = "",
    limits: Limits = DEFAULT_LIMITS,
    per_test_s: float | None = None,
    isolation: IsolationChoice = "auto",
    require_isolation: bool = False,
    python: str | None = None,
) -> TestReport:
    """Sync :func:`arun_tests`."""
    return run_sync(
        arun_tests(
            code,
            tests,
            prelude=prelude,
            setup=setup,
            limits=limits,
            per_test_s=per_test_s,
            isolation=isolation,
            require_isolation=require_isolation,
            python=python,
        )
    )
