from __future__ import annotations

from dataclasses import dataclass

from lbt_agents.agents._agent import Agent
from lbt_agents.agents._messages import problem_message, system_message
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
        return [
            system_message("student_system", task=self.task, kind=ep["kind"], persona=self.persona),
            problem_message(tp, task=self.task),
            {"role": "assistant", "content": teaching.strip()},
            problem_message(ep, task=self.task),
        ]

    async def take_exam(self, tp: Problem, teaching: str, ep: Problem, *, key: str, route: str | None = None) -> Reply:
        """The student's reply to ``ep``; ``route`` (e.g. the pair's id) picks the replica, so calls
        sharing the teaching prefix meet one replica's prefix cache."""
        messages = self.messages(tp, teaching, ep)
        [reply] = await self.chat.sample(messages, n=1, key=f"exam:{key}", shared_prefix=len(messages) - 1, route=route)
        return reply
