from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lbt_agents.agents._agent import Agent
from lbt_agents.agents._layouts import layout
from lbt_agents.llm import Message, Reply
from lbt_agents.prompts import load_prompt
from lbt_agents.types import Problem


@dataclass(frozen=True)
class Teacher(Agent):
    """Writes rationales and answers (TR-TA) for teaching problems, and exemplar sets (M3)."""

    def messages(self, tp: Problem) -> list[Message]:
        return layout(self.prompts, tp["kind"]).teacher(tp, task=self.task, persona=self.persona)

    async def teach(self, tp: Problem, n: int) -> list[Reply]:
        """``n`` sampled TR-TA pairs (the first one's prompt is cached on the server before the rest go)."""
        messages = self.messages(tp)
        return await self.chat.sample(messages, n=n, key=f"teach:{tp['id']}", shared_prefix=len(messages))

    async def greedy(self, tp: Problem) -> Reply:
        """One greedy TR-TA pair (the greedy baseline)."""
        [reply] = await self.chat.sample(self.messages(tp), n=1, key=f"greedy:{tp['id']}", temperature=0.0)
        return reply

    def writing_messages(self, prompt: str) -> list[Message]:
        """A writing request (exemplars, explanations) under the M3 teacher's system prompt."""
        system = load_prompt("teacher_system", task="m3").strip()
        if self.persona:
            from lbt_agents.agents._messages import persona_text

            system = f"{system}\n\n{persona_text(self.persona)}"
        return [{"role": "system", "content": system}, {"role": "user", "content": prompt}]

    async def write(self, messages: Sequence[Message], *, key: str, n: int = 1) -> list[Reply]:
        """``n`` replies to a writing conversation (``writing_messages`` plus any retries)."""
        return await self.chat.sample(list(messages), n=n, key=key)

    async def explain_failures(self, prompt: str, *, n: int, key: str) -> list[Reply]:
        """``n`` explanations of the students' pooled failures (prompt ``m3/explain``)."""
        return await self.write(self.writing_messages(prompt), key=key, n=n)
