from __future__ import annotations

from dataclasses import dataclass

from lbt_agents.agents._agent import Agent
from lbt_agents.agents._layouts import layout
from lbt_agents.llm import Message, Reply
from lbt_agents.types import Problem


@dataclass(frozen=True)
class Student(Agent):
    """Takes exams with a teacher's TR-TA pair as the in-context example.

    The prompt puts everything shared first (instruction, fixed shots, TP, the
    teacher's reply) and the exam problem last, so a server's prefix cache
    serves the repeated part.
    """

    def messages(self, tp: Problem, teaching: str, ep: Problem) -> list[Message]:
        return layout(self.prompts, ep["kind"]).student(tp, teaching, ep, task=self.task, persona=self.persona)

    async def take_exam(self, tp: Problem, teaching: str, ep: Problem, *, key: str) -> Reply:
        messages = self.messages(tp, teaching, ep)
        shared = layout(self.prompts, ep["kind"]).shared_prefix(messages)
        [reply] = await self.chat.sample(messages, n=1, key=f"exam:{key}", shared_prefix=shared)
        return reply
