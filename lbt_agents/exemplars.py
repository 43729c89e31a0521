"""Exemplar sets for M3: parse a teacher's reply into K exemplars, format them, dedup them.

An exemplar is a worked example shown in context: a problem, a worked solution
and the final answer.  The text form (``prompts/m3/exemplar.md``) is what the
teacher reads and writes::

    ### Example 1
    Problem: ...
    Solution: ...
    [[Final Answer]]: ...
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable, Sequence

from typing_extensions import TypedDict

from lbt_agents.grading.label import match_choice
from lbt_agents.grading.math import FINAL_MARKER
from lbt_agents.llm import Message
from lbt_agents.prompts import load_prompt, render_prompt
from lbt_agents.types import Problem


class Exemplar(TypedDict):
    """One in-context example."""

    question: str
    solution: str
    answer: str


class ExemplarParseError(ValueError):
    """A teacher reply is not a set of K exemplars; the message says what is wrong."""


_HEADER = re.compile(r"^\s*(?:#+\s*|\*\*\s*)?example\s*#?\s*(\d+)\s*[:.)]?\s*(?:\*\*)?\s*$", re.IGNORECASE | re.MULTILINE)
_FIELD = re.compile(
    r"^\s*(?:\*\*)?\s*(problem|question|solution|reasoning|rationale|\[\[final answer\]\]|final answer|answer)"
    r"\s*(?:\*\*)?\s*:\s*(?:\*\*)?",
    re.IGNORECASE | re.MULTILINE,
)
_PLACEHOLDER = re.compile(r"<[^<>]*>")
_FIELD_NAMES = {
    "problem": "question",
    "question": "question",
    "solution": "solution",
    "reasoning": "solution",
    "rationale": "solution",
    "[[final answer]]": "answer",
    "final answer": "answer",
    "answer": "answer",
}


def from_problem(problem: Problem) -> Exemplar:
    """A training problem as an exemplar (its reference solution, if any, as the rationale)."""
    return Exemplar(question=problem["question"].strip(), solution=(problem.get("solution") or "").strip(),
                    answer=str(problem["answer"]).strip())


def format_exemplar(exemplar: Exemplar, index: int) -> str:
    return render_prompt(
        "exemplar", task="m3", index=index, question=exemplar["question"].strip(),
        solution=exemplar["solution"].strip() or "(none)", answer=exemplar["answer"].strip(),
    ).strip()


def format_exemplars(exemplars: Sequence[Exemplar]) -> str:
    """The text form of a set (what the teacher reads, and is asked to write)."""
    return "\n\n".join(format_exemplar(e, i) for i, e in enumerate(exemplars, 1))


def parse_exemplars(text: str, k: int, *, choices: Sequence[str] | None = None) -> list[Exemplar]:
    """The first ``k`` exemplars in ``text``; :class:`ExemplarParseError` if there are fewer
    complete ones (problem, solution and answer), or an answer is not one of ``choices``."""
    blocks = _blocks(text)
    found: list[Exemplar] = []
    problems: list[str] = []
    for number, block in blocks:
        fields = _fields(block)
        missing = [f for f in ("question", "answer") if not fields.get(f)]
        if missing:
            problems.append(f"example {number} has no {' and no '.join(_label(m) for m in missing)}")
            continue
        answer = fields["answer"].splitlines()[0].strip()
        if choices:
            matched = match_choice(answer, choices)
            if matched is None:
                problems.append(f"example {number}: answer {answer!r} is not one of {', '.join(choices)}")
                continue
            answer = matched
        found.append(Exemplar(question=fields["question"], solution=fields.get("solution", ""), answer=answer))
        if len(found) == k:
            return found
    detail = "; ".join(problems[:3]) or "no '### Example N' blocks with 'Problem:' and '[[Final Answer]]:' lines"
    raise ExemplarParseError(f"found {len(found)} complete example(s), need {k}: {detail}")


def _label(field: str) -> str:
    return {"question": "'Problem:'", "answer": f"'{FINAL_MARKER}' line"}[field]


def _blocks(text: str) -> list[tuple[int, str]]:
    headers = list(_HEADER.finditer(text or ""))
    if not headers:
        return [(1, text)] if _FIELD.search(text or "") else []
    out = []
    for i, h in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        out.append((int(h.group(1)), text[h.end() : end]))
    return out


def _fields(block: str) -> dict[str, str]:
    marks = list(_FIELD.finditer(block))
    fields: dict[str, str] = {}
    for i, m in enumerate(marks):
        name = _FIELD_NAMES[m.group(1).lower()]
        end = marks[i + 1].start() if i + 1 < len(marks) else len(block)
        value = block[m.end() : end].strip().strip("*").strip()
        if _PLACEHOLDER.fullmatch(value.splitlines()[0].strip() if value else ""):
            value = ""  # the format's own "<...>" placeholder, copied: not a field
        if name == "solution" and name in fields:
            continue
        if value and name not in fields:
            fields[name] = value
    return fields


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def set_key(exemplars: Iterable[Exemplar]) -> str:
    """Identity of a set for dedup: normalized text, order-insensitive."""
    parts = sorted(f"{_norm(e['question'])}\x1f{_norm(e['solution'])}\x1f{_norm(e['answer'])}" for e in exemplars)
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()[:16]


def dedup(sets: Sequence[Sequence[Exemplar]], seen: Iterable[str] = ()) -> list[int | None]:
    """For each set, ``None`` if it is new, else the index of the earlier equal set
    (``-1`` for a key already in ``seen``)."""
    known: dict[str, int] = {key: -1 for key in seen}
    out: list[int | None] = []
    for i, exemplars in enumerate(sets):
        key = set_key(exemplars)
        if key in known:
            out.append(known[key])
        else:
            known[key] = i
            out.append(None)
    return out


def few_shot_messages(
    exemplars: Sequence[Exemplar], problem: Problem, *, task: str | None, persona: str | None = None
) -> list[Message]:
    """A predictor's prompt: system, then each exemplar as a user/assistant turn, then the problem."""
    from lbt_agents.agents._messages import persona_text, problem_message

    system = load_prompt("predictor_system", task="m3").strip()
    if persona:
        system = f"{system}\n\n{persona_text(persona)}"
    messages: list[Message] = [{"role": "system", "content": system}]
    for e in exemplars:
        shot = Problem(id="exemplar", question=e["question"], answer=e["answer"], kind=problem["kind"])
        messages.append(problem_message(shot, task=task))
        solution = e["solution"].strip()
        messages.append({"role": "assistant", "content": f"{solution}\n{FINAL_MARKER} {e['answer']}".strip()})
    messages.append(problem_message(problem, task=task))
    return messages
