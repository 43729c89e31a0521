"""The official math prompt layout: one user message, four fixed shots, a prefilled assistant turn.

The texts live in ``lbt_agents/prompts/paper/math.json`` (override it through
``$LBT_PROMPTS_DIR``).  The last message of every prompt is the assistant
prefill; the endpoint must *continue* it (vLLM: ``continue_final_message``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lbt_agents.errors import ConfigError
from lbt_agents.paper._extract import FINAL_ANSWER_MARKER, extract_answer
from lbt_agents.prompts import load_prompt, render

Message = dict[str, str]

CONTINUE_FINAL_MESSAGE: Mapping[str, bool] = {
    "continue_final_message": True,
    "add_generation_prompt": False,
}
"""Request-body fields that make a vLLM chat endpoint continue the prefilled assistant turn."""

_KEYS = ("system", "instruction", "demo", "demo_separator", "exam", "prefill", "shots")


@dataclass(frozen=True)
class Demo:
    """A teacher's worked solution as students see it: the rationale and the normalised answer."""

    rationale: str
    answer: str


@dataclass(frozen=True)
class Shot:
    """One fixed few-shot example."""

    question: str
    rationale: str
    answer: str


@lru_cache(maxsize=1)
def paper_prompt() -> Mapping[str, Any]:
    """The official math prompt texts (system, instruction, templates, prefill, shots)."""
    raw = load_prompt("math.json", task="paper")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"prompts/paper/math.json is not valid JSON: {exc}") from None
    missing = [key for key in _KEYS if key not in data]
    if missing:
        raise ConfigError(f"prompts/paper/math.json lacks {', '.join(missing)}")
    for index, shot in enumerate(data["shots"]):
        if not {"question", "rationale", "answer"} <= set(shot):
            raise ConfigError(f"prompts/paper/math.json: shot {index} needs question, rationale and answer")
    return data


def shots() -> list[Shot]:
    """The four fixed Minerva shots."""
    return [Shot(s["question"], s["rationale"], s["answer"]) for s in paper_prompt()["shots"]]


def demo_of(teacher_text: str) -> Demo:
    """The teacher's reply as a demo: cut at the first marker, with the normalised answer.

    As upstream, a reply without the marker loses its last character
    (``text[:text.find(marker)]`` with ``find`` giving -1).
    """
    cut = teacher_text[: teacher_text.find(FINAL_ANSWER_MARKER)].rstrip()
    return Demo(cut, extract_answer(teacher_text))


def _messages(demos: list[Shot], question: str) -> list[Message]:
    prompt = paper_prompt()
    demo_text = prompt["demo_separator"].join(
        render(prompt["demo"], question=d.question, rationale=d.rationale, answer=d.answer) for d in demos
    )
    user = prompt["instruction"] + render(prompt["exam"], demo=demo_text, question=question)
    return [
        {"role": "system", "content": prompt["system"]},
        {"role": "user", "content": user},
        {"role": "assistant", "content": prompt["prefill"]},
    ]


def teacher_messages(tp: str) -> list[Message]:
    """The teacher's prompt for teaching problem ``tp``: the shots, then ``tp``; prefilled."""
    return _messages(shots(), tp)


def student_messages(tp: str, demo: Demo | str, ep: str) -> list[Message]:
    """A student's exam prompt: the shots, the TP with its demo, then exam problem ``ep``; prefilled.

    ``demo`` is a ``Demo`` (from ``demo_of``) or the teacher's raw reply.
    """
    if isinstance(demo, str):
        demo = demo_of(demo)
    return _messages([*shots(), Shot(tp, demo.rationale, demo.answer)], ep)
