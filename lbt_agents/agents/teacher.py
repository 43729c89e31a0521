from __future__ import annotations

from dataclasses import dataclass

from lbt_agents.agents._messages import problem_message, system_message
from lbt_agents.llm import ChatAgent, Message, Reply
from lbt_agents.types import Problem


@dataclass(frozen=True)
class Teacher:
    """Writes rationales and answers (TR-TA) for a teaching problem."""

    chat: ChatAgent
    task: str | None = None

    def messages(self, tp: Problem) -> list[Message]:
        return [
            system_message("teacher_system", task=self.task, kind=tp["kind"]),
            problem_message(tp, task=self.task),
        ]

    async def teach(self, tp: Problem, n: int) -> list[Reply]:
        """``n`` sampled TR-TA pairs (the first one's prompt is cached on the server before the rest go)."""
        messages = self.messages(tp)
        return await self.chat.sample(messages, n=n, key=f"teach:{tp['id']}", shared_prefix=len(messages))

    async def greedy(self, tp: Problem) -> Reply:
        """One greedy TR-TA pair (the greedy baseline)."""
        [reply] = await self.chat.sample(self.messages(tp), n=1, key=f"greedy:{tp['id']}", temperature=0.0)
        return reply
