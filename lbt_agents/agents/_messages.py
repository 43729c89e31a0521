from __future__ import annotations

from lbt_agents.errors import ConfigError
from lbt_agents.llm import Message
from lbt_agents.prompts import load_prompt, render_prompt
from lbt_agents.types import Problem


def problem_message(problem: Problem, *, task: str | None) -> Message:
    """The user turn that poses ``problem`` (prompt file ``problem``)."""
    values = {"meta": {}, "solution": "", **problem}
    return {"role": "user", "content": render_prompt("problem", values, task=task, kind=problem["kind"])}


def system_message(name: str, *, task: str | None, kind: str, persona: str | None = None) -> Message:
    text = load_prompt(name, task=task, kind=kind).strip()
    if persona:
        text = f"{text}\n\n{persona_text(persona)}"
    return {"role": "system", "content": text}


def persona_text(persona: str) -> str:
    """A persona is a prompt file under ``prompts/personas/`` or literal text."""
    if not any(ch.isspace() for ch in persona.strip()):
        try:
            return load_prompt(persona.strip(), task="personas").strip()
        except ConfigError:
            pass
    return persona.strip()
