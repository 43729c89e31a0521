"""The code examiner: extract the final program, run it in the sandbox against the tests.

``score`` is the V-score (pass rate on ``meta["visible_tests"]``; 1 or 0, all visible tests
pass or not, when ``meta["exam_score"]`` is ``all_pass``: the paper's rule), ``correct`` means
all visible tests pass, and ``hidden_score`` is the S-score (pass rate on
``meta["hidden_tests"]``).  Visible and hidden tests run in ONE sandboxed process.

Without a working bubblewrap, :meth:`CodeGrader.grade` raises :class:`IsolationError` (it
never grades unconfined unless ``isolation="bare"`` or ``LBT_SANDBOX_ISOLATION=bare`` says so).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from lbt_agents.grading.base import grader
from lbt_agents.sandbox import (
    IsolationChoice,
    IsolationError,
    Limits,
    arun_tests,
    resolve_isolation,
)
from lbt_agents.types import Problem, TaskKind, Verdict

MARKER = "[[Final Answer]]"
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def _blocks(text: str) -> list[tuple[str, str]]:
    """Fenced blocks as (language, body); an unclosed last block (a cut-off reply) counts."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


def extract_program(reply: str) -> str | None:
    """The last fenced python block after the ``[[Final Answer]]`` marker, else the last
    fenced block of the reply; ``None`` when there is none."""
    idx = reply.rfind(MARKER)
    for text in ([reply[idx + len(MARKER) :]] if idx >= 0 else []) + [reply]:
        blocks = [b for b in _blocks(text) if b[1].strip()]
        python = [b for b in blocks if b[0] in ("python", "py", "python3")]
        chosen = python or blocks
        if chosen:
            return chosen[-1][1].strip("\n") + "\n"
    return None


def normalize_program(code: str) -> str:
    """``ast.dump`` of the program (comments and formatting gone); the stripped text if it does not parse."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return "\n".join(line.rstrip() for line in code.strip().splitlines())
    for node in ast.walk(tree):  # docstrings are comments too
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body.pop(0)
            if not body:
                body.append(ast.Pass())
    return ast.dump(tree, annotate_fields=False)


@dataclass
class CodeGrader:
    """Grades programs with the sandbox; see the module docstring."""

    limits: Limits = field(default_factory=lambda: Limits(wall_s=20.0, cpu_s=20.0, memory_mb=1024))
    per_test_s: float = 4.0
    isolation: IsolationChoice = "auto"
    """auto: the process default (bubblewrap unless ``LBT_SANDBOX_ISOLATION=bare``); see :mod:`lbt_agents.sandbox`."""
    kind: TaskKind = "code"

    def extract(self, reply: str) -> str | None:
        return extract_program(reply)

    def normalize(self, answer: str) -> str:
        return normalize_program(answer)

    def equivalent(self, a: str, b: str) -> bool:
        return normalize_program(a) == normalize_program(b)

    async def grade(self, problem: Problem, reply: str, *, truncated: bool = False) -> Verdict:
        """Raises :class:`IsolationError` when the sandbox cannot isolate here (a machine problem, not a reply's)."""
        isolation = resolve_isolation(self.isolation)  # the last guard: never grade unconfined by accident
        program = None
        try:
            program = self.extract(reply)
            if program is None:
                return Verdict(
                    answer=None, correct=False, score=0.0, truncated=truncated,
                    detail="no fenced code block in the reply" + (" (reply truncated)" if truncated else ""),
                    hidden_score=0.0,
                )  # fmt: skip
            meta = problem.get("meta", {})
            visible = list(meta.get("visible_tests", []))
            hidden = list(meta.get("hidden_tests", []))
            tests = list(dict.fromkeys(visible + hidden))  # one process, each distinct test once
            if not tests:
                return Verdict(answer=program, correct=False, score=0.0, truncated=truncated,
                               detail="the problem has no tests", hidden_score=0.0)  # fmt: skip
            report = await arun_tests(
                program,
                tests,
                prelude=meta.get("test_prelude", ""),
                setup=meta.get("test_setup", ""),
                limits=self.limits,
                per_test_s=self.per_test_s,
                isolation=isolation,
            )
            ok = {t: o.passed for t, o in zip(tests, report.outcomes)}
            v_pass = sum(ok[t] for t in visible)
            h_pass = sum(ok[t] for t in hidden)
            score = v_pass / len(visible) if visible else h_pass / len(hidden)
            if meta.get("exam_score", "fraction") == "all_pass":
                score = float(score == 1.0)
            hidden_score = h_pass / len(hidden) if hidden else score
            failure = next((o.error for o in report.outcomes if not o.passed), None)
            detail = f"visible {v_pass}/{len(visible)}, hidden {h_pass}/{len(hidden)}; run {report.run.status}"
            if report.load_error:
                detail += f"; {report.load_error}"
            elif failure:
                detail += f"; first failure: {failure}"
            if report.run.isolation == "bare":
                detail += "; ran UNCONFINED (isolation bare)"
            if truncated:
                detail += "; reply truncated"
            return Verdict(
                answer=program,
                correct=bool(visible) and v_pass == len(visible),
                score=score,
                truncated=truncated,
                detail=detail[:1000],
                hidden_score=hidden_score,
            )
        except IsolationError:
            raise
        except Exception as exc:  # noqa: BLE001 - an examiner never raises on a reply
            return Verdict(answer=program, correct=False, score=0.0, truncated=truncated,
                           detail=f"grading failed: {type(exc).__name__}: {exc}"[:1000], hidden_score=0.0)  # fmt: skip


@grader("code")
def _code_grader() -> CodeGrader:
    return CodeGrader()
