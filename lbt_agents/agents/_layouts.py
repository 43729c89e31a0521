"""Prompt layouts: how a prompt set (``classroom.prompts``) turns problems into chat messages.

``default`` is lbt-agents' chat (a system prompt, the TP, the teacher's reply as an assistant turn, the
EP).  ``paper`` is the official layout (``lbt_agents.paper``: one user message with the fixed shots, the
TP with its demo and the EP; the assistant turn prefilled, for the endpoint to continue) for the kinds
that have one; other kinds use the default layout.
"""

from __future__ import annotations

from typing import Protocol

from lbt_agents.agents._messages import persona_text, problem_message, system_message
from lbt_agents.llm import Message
from lbt_agents.types import Problem


class PromptLayout(Protocol):
    prefill: bool
    """Its prompts end with an assistant turn that the endpoint must continue."""

    def teacher(self, tp: Problem, *, task: str | None, persona: str | None) -> list[Message]:
        """The teacher's prompt for a teaching problem."""

    def student(self, tp: Problem, teaching: str, ep: Problem, *, task: str | None,
                persona: str | None) -> list[Message]:
        """A student's exam prompt: ``teaching`` (the teacher's reply) as the example for ``ep``."""

    def shared_prefix(self, messages: list[Message]) -> int:
        """How many leading messages of a student prompt all exams of one pair share."""


class DefaultLayout:
    prefill = False

    def teacher(self, tp: Problem, *, task: str | None, persona: str | None) -> list[Message]:
        return [system_message("teacher_system", task=task, kind=tp["kind"], persona=persona),
                problem_message(tp, task=task)]

    def student(self, tp: Problem, teaching: str, ep: Problem, *, task: str | None,
                persona: str | None) -> list[Message]:
        return [
            system_message("student_system", task=task, kind=ep["kind"], persona=persona),
            problem_message(tp, task=task),
            {"role": "assistant", "content": teaching.strip()},
            problem_message(ep, task=task),
        ]

    def shared_prefix(self, messages: list[Message]) -> int:
        return len(messages) - 1


class PaperMathLayout:
    """The official math prompt; the teacher's reply (the continuation after the prefill) becomes the demo."""

    prefill = True

    def teacher(self, tp: Problem, *, task: str | None, persona: str | None) -> list[Message]:
        from lbt_agents.paper import teacher_messages

        return _with_persona(teacher_messages(tp["question"]), persona)

    def student(self, tp: Problem, teaching: str, ep: Problem, *, task: str | None,
                persona: str | None) -> list[Message]:
        from lbt_agents.paper import student_messages

        return _with_persona(student_messages(tp["question"], teaching, ep["question"]), persona)

    def shared_prefix(self, messages: list[Message]) -> int:
        return 0  # the EP is inside the one user message


def _with_persona(messages: list[Message], persona: str | None) -> list[Message]:
    if persona:
        messages[0] = {"role": "system", "content": f"{messages[0]['content']}\n\n{persona_text(persona)}"}
    return messages


_DEFAULT = DefaultLayout()
_PAPER: dict[str, PromptLayout] = {"math": PaperMathLayout()}


def layout(prompts: str, kind: str) -> PromptLayout:
    """The layout of prompt set ``prompts`` for problems of ``kind``."""
    if prompts == "paper":
        return _PAPER.get(kind, _DEFAULT)
    return _DEFAULT
