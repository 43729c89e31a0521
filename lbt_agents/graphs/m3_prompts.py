"""M3's prompt sets: how exemplars, failures, reasons and predictor prompts are written and read.

``m3`` is lbt-agents' own (worked exemplars with a rationale, chain-of-thought predictors
graded by the examiner, the whole explanation as one reason); ``paper`` is the official
LbT-M3 patch on ProTeGi (``Text:``/``Label:`` exemplars without rationale, one user message
per request, direct Yes/No predictors graded by the reply's first word, reasons and sets
wrapped in ``<START>``/``<END>``). The graph only talks to :class:`M3Prompts`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from lbt_agents.agents import Agent, Teacher
from lbt_agents.errors import ConfigError
from lbt_agents.exemplars import (
    Exemplar,
    ExemplarParseError,
    format_exemplars,
    from_problem,
    parse_exemplars,
)
from lbt_agents.grading.label import match_choice, normalize_label
from lbt_agents.llm import Message, Reply
from lbt_agents.prompts import render_prompt
from lbt_agents.types import Problem, Verdict


class M3Prompts:
    """lbt-agents' own M3 prompts (``prompts/m3/``)."""

    name = "m3"
    retries = True
    """Whether a reply that is not a set gets the parse error and another try."""

    def check(self, problems: Sequence[Problem]) -> None:
        """A ConfigError when the task's problems cannot be posed with these prompts."""

    def exemplar_of(self, problem: Problem) -> Exemplar:
        return from_problem(problem)

    def predictor_overrides(self) -> dict[str, Any]:
        """Sampling settings every predictor call uses (students and the teacher)."""
        return {}

    def predictor_messages(self, exemplars: Sequence[Exemplar], problem: Problem, *, task: str | None,
                           persona: str | None) -> list[Message]:
        """A predictor's prompt (what :meth:`predict` sends)."""
        from lbt_agents.exemplars import few_shot_messages

        return few_shot_messages(exemplars, problem, task=task, persona=persona)

    async def predict(self, agent: Agent, exemplars: Sequence[Exemplar], problem: Problem, *, key: str,
                      coalesce: bool, **overrides: Any) -> Reply:
        return await agent.answer_with_shots(exemplars, problem, key=key, coalesce=coalesce, **overrides)

    def grade(self, problem: Problem, reply: Reply) -> Verdict | None:
        """The verdict, or ``None`` to leave it to the classroom's examiner."""
        return None

    def ranked(self, sets: Sequence[dict[str, Any]], scores: Sequence[float]) -> list[dict[str, Any]]:
        """``sets`` best score first; ties keep their order (incumbents before new sets)."""
        order = sorted(range(len(sets)), key=lambda i: -scores[i])
        return [sets[i] for i in order]

    def failures(self, failures: Sequence[dict[str, Any]], chars: int) -> str:
        blocks = []
        for i, f in enumerate(failures, 1):
            text = " ".join(f["text"].split())
            excerpt = text if len(text) <= chars else text[:chars].rstrip() + " …"
            blocks.append(render_prompt(
                "failure", task="m3", index=i, student=f["student"], question=f["problem"]["question"].strip(),
                reply=excerpt or "(empty)", given=f["answer"] if f["answer"] is not None else "(none)",
                answer=f["problem"]["answer"],
            ).strip())
        return "\n\n".join(blocks)

    def explain_messages(self, teacher: Teacher, exemplars: Sequence[Exemplar], failures: str,
                         problems: Sequence[Problem], k: int) -> list[Message]:
        prompt = render_prompt("explain", task="m3", exemplars=format_exemplars(exemplars), failures=failures)
        return teacher.writing_messages(prompt)

    def reasons(self, text: str) -> list[str]:
        """The reasons in one explanation reply."""
        return [text.strip()]

    def write_messages(self, teacher: Teacher, exemplars: Sequence[Exemplar], failures: str, reason: str,
                       problems: Sequence[Problem], k: int, choices: Sequence[str] | None) -> list[Message]:
        prompt = render_prompt("write", task="m3", exemplars=format_exemplars(exemplars), failures=failures,
                               reason=reason, k=k, choices_hint=_hint(choices))
        return teacher.writing_messages(prompt)

    def init_messages(self, teacher: Teacher, base: Sequence[Exemplar], problems: Sequence[Problem], k: int,
                      choices: Sequence[str] | None) -> list[Message]:
        listed = "\n\n".join(
            render_prompt("exemplar", task="m3", index=j, question=e["question"], solution="(to write)",
                          answer=e["answer"]).strip()
            for j, e in enumerate(base, 1)
        )
        prompt = render_prompt("init", task="m3", k=k, problems=listed, choices_hint=_hint(choices))
        return teacher.writing_messages(prompt)

    def parse_set(self, text: str, k: int, choices: Sequence[str] | None) -> list[Exemplar]:
        return parse_exemplars(text, k, choices=choices)

    def retry_message(self, error: str, k: int, choices: Sequence[str] | None) -> str:
        return render_prompt("parse_retry", task="m3", error=error, k=k, choices_hint=_hint(choices))


def _hint(choices: Sequence[str] | None) -> str:
    return f", one of: {', '.join(choices)}" if choices else ""


_TASK = "paper/m3"
_YES_NO = ("Yes", "No")
_REASONS_PER_CALL = 1
"""Reasons each official 'gradient' call asks for (``gradients_per_error``)."""
_TEXT_LABEL = re.compile(
    r"(?:\*\*)?\s*Text\s*:\s*(?:\*\*)?(?P<text>.*?)\n\s*(?:[-*#]\s*)?(?:\*\*)?\s*Label\s*:\s*(?:\*\*)?"
    r"(?P<label>[^\n]*)",
    re.IGNORECASE | re.DOTALL,
)


def _official_layout(prompt: str) -> str:
    """Every line's leading whitespace removed (the official prompts are dedented so, contents included)."""
    return "\n".join(line.lstrip() for line in prompt.split("\n"))


def _section(text: str) -> str:
    """A prompt section as the official ``parse_sectioned_prompt`` returns it: lines stripped, then the whole."""
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def _tagged(text: str, start: str = "<START>", end: str = "<END>") -> list[str]:
    """Every ``start ... end`` span, in order (an unclosed last one is not a span)."""
    out = []
    while (i := text.find(start)) != -1 and (j := text.find(end, i)) != -1:
        out.append(text[i + len(start) : j].strip())
        text = text[j + len(end) :]
    return out


def _last_tagged(text: str, start: str = "<START>", end: str = "<END>") -> str:
    """The text after the last ``start`` up to the next ``end`` (the whole reply when there are no tags)."""
    return text.split(start)[-1].split(end)[0].strip()


class PaperPrompts(M3Prompts):
    """The official LbT-M3 prompts (``prompts/paper/m3/``, texts from the patch; see ``prompts/paper/NOTICE.md``)."""

    name = "paper"
    retries = False

    def check(self, problems: Sequence[Problem]) -> None:
        for p in problems[:1]:
            meta = p.get("meta") or {}
            choices = tuple(meta.get("choices") or ())
            if p["kind"] != "label" or sorted(choices) != sorted(_YES_NO) or not meta.get("instruction"):
                raise ConfigError(
                    f"m3.prompt_set=paper needs a Yes/No label task whose problems carry the task's instruction "
                    f"(e.g. liar, logical_fallacy); problem {p['id']!r} has kind {p['kind']!r}, choices "
                    f"{list(choices)} and {'an' if meta.get('instruction') else 'no'} instruction"
                )

    def exemplar_of(self, problem: Problem) -> Exemplar:
        text = (problem.get("meta") or {}).get("text") or problem["question"]
        return Exemplar(question=str(text).strip(), solution="", answer=str(problem["answer"]).strip())

    def predictor_overrides(self) -> dict[str, Any]:
        return {"max_tokens": 4, "temperature": 0.0}

    def examples(self, exemplars: Sequence[Exemplar]) -> str:
        """The ``# Examples`` section of the predictor prompt."""
        return "".join(render_prompt("exemplar", task=_TASK, index=j, text=e["question"].strip(), label=e["answer"])
                       for j, e in enumerate(exemplars, 1))

    def predictor_prompt(self, exemplars: Sequence[Exemplar], problem: Problem) -> str:
        meta = problem.get("meta") or {}
        return render_prompt("predictor", task=_TASK, instruction=meta["instruction"], examples=self.examples(exemplars),
                             text=str(meta.get("text") or problem["question"]))

    def ranked(self, sets: Sequence[dict[str, Any]], scores: Sequence[float]) -> list[dict[str, Any]]:
        """As the official ``sorted(zip(scores, prompts), reverse=True)``: ties go to the larger prompt text."""
        def prompt(s: dict[str, Any]) -> str:
            instruction = ""  # the same in every prompt of a run: only the examples decide
            return render_prompt("predictor", task=_TASK, instruction=instruction,
                                 examples=self.examples(s["exemplars"]), text="{{ text }}")

        order = sorted(range(len(sets)), key=lambda i: (scores[i], prompt(sets[i])), reverse=True)
        return [sets[i] for i in order]

    def predictor_messages(self, exemplars: Sequence[Exemplar], problem: Problem, *, task: str | None,
                           persona: str | None) -> list[Message]:
        return [{"role": "user", "content": self.predictor_prompt(exemplars, problem)}]

    async def predict(self, agent: Agent, exemplars: Sequence[Exemplar], problem: Problem, *, key: str,
                      coalesce: bool, **overrides: Any) -> Reply:
        messages = self.predictor_messages(exemplars, problem, task=agent.task, persona=agent.persona)
        [reply] = await agent.chat.sample(messages, n=1, key=key, coalesce=coalesce, **overrides)
        return reply

    def grade(self, problem: Problem, reply: Reply) -> Verdict:
        said = "Yes" if reply.text.strip().upper().startswith("YES") else "No"
        return Verdict(answer=said, correct=said == normalize_label(problem["answer"]).capitalize(), score=0.0,
                       truncated=reply.truncated)

    def failures(self, failures: Sequence[dict[str, Any]], chars: int) -> str:
        return "\n\n".join(
            render_prompt("failure", task=_TASK, index=i, text=self.exemplar_of(f["problem"])["question"],
                          label=f["problem"]["answer"], prediction=f["answer"] or "No").strip()
            for i, f in enumerate(failures, 1)
        )

    def _messages(self, name: str, problems: Sequence[Problem], **values: Any) -> list[Message]:
        instruction = (problems[0].get("meta") or {})["instruction"]
        prompt = render_prompt(name, task=_TASK, instruction=instruction, **values)
        return [{"role": "user", "content": _official_layout(prompt)}]

    def explain_messages(self, teacher: Teacher, exemplars: Sequence[Exemplar], failures: str,
                         problems: Sequence[Problem], k: int) -> list[Message]:
        return self._messages("explain", problems, k=k, exemplars=_section(self.examples(exemplars)),
                              failures=failures, n=_REASONS_PER_CALL)

    def reasons(self, text: str) -> list[str]:
        return _tagged(text)

    def write_messages(self, teacher: Teacher, exemplars: Sequence[Exemplar], failures: str, reason: str,
                       problems: Sequence[Problem], k: int, choices: Sequence[str] | None) -> list[Message]:
        return self._messages("write", problems, k=k, exemplars=_section(self.examples(exemplars)),
                              failures=failures, reason=reason)

    def init_messages(self, teacher: Teacher, base: Sequence[Exemplar], problems: Sequence[Problem], k: int,
                      choices: Sequence[str] | None) -> list[Message]:
        return self._messages("init", problems, k=k)

    def parse_set(self, text: str, k: int, choices: Sequence[str] | None) -> list[Exemplar]:
        """Every ``Text:``/``Label:`` example inside the reply's last ``<START>`` ... ``<END>``."""
        found, bad = [], []
        for m in _TEXT_LABEL.finditer(_last_tagged(text)):
            label = match_choice(m.group("label").strip(), list(choices or _YES_NO))
            body = m.group("text").strip()
            if label is None or not body:
                bad.append(m.group("label").strip())
                continue
            found.append(Exemplar(question=body, solution="", answer=label))
        if not found:
            detail = f"labels not Yes/No: {bad[:3]}" if bad else "no 'Text:' ... 'Label:' examples"
            raise ExemplarParseError(f"found 0 complete example(s): {detail}")
        return found


PROMPT_SETS: dict[str, M3Prompts] = {p.name: p for p in (M3Prompts(), PaperPrompts())}


def prompt_set(name: str) -> M3Prompts:
    try:
        return PROMPT_SETS[name]
    except KeyError:
        raise ConfigError(f"unknown m3.prompt_set {name!r}; known: {', '.join(PROMPT_SETS)}") from None
