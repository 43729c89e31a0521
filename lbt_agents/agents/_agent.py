from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lbt_agents.llm import ChatAgent, Reply
from lbt_agents.types import Problem

if TYPE_CHECKING:
    from lbt_agents.exemplars import Exemplar


@dataclass(frozen=True)
class Agent:
    """What every classroom agent can do: answer a problem with worked examples in context."""

    chat: ChatAgent
    task: str | None = None
    prompts: str = "default"
    """The prompt set (``classroom.prompts``): ``default`` or ``paper``."""

    @property
    def name(self) -> str:
        return self.chat.name

    @property
    def persona(self) -> str | None:
        return self.chat.cfg.persona

    async def answer_with_shots(
        self, exemplars: Sequence[Exemplar], problem: Problem, *, key: str, coalesce: bool = False, **overrides: Any
    ) -> Reply:
        """One reply to ``problem`` with ``exemplars`` as user/assistant turns before it
        (``coalesce``: identical calls in flight at once are sent once)."""
        from lbt_agents.exemplars import few_shot_messages

        messages = few_shot_messages(exemplars, problem, task=self.task, persona=self.persona)
        [reply] = await self.chat.sample(messages, n=1, key=key, coalesce=coalesce, **overrides)
        return reply
