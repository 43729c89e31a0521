"""The examiner's grading interface and its registry (one grader per task kind)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from lbt_agents.types import Problem, TaskKind, Verdict


class Grader(Protocol):
    """Extracts a final answer from a reply and grades it against ground truth."""

    kind: TaskKind

    def extract(self, reply: str) -> str | None:
        """The final answer in ``reply``; ``None`` when it has none."""

    def normalize(self, answer: str) -> str:
        """A canonical form used to group equal answers (for voting)."""

    def equivalent(self, a: str, b: str) -> bool:
        """Whether two extracted answers are the same answer."""

    async def grade(self, problem: Problem, reply: str, *, truncated: bool = False) -> Verdict:
        """Grade ``reply`` to ``problem``; never raises on malformed replies, and never blocks the event
        loop for long: a reply that cannot be graded in bounded time is graded wrong, with the reason."""


_GRADERS: dict[str, Callable[[], Grader]] = {}


def grader(kind: TaskKind) -> Callable[[Callable[[], Grader]], Callable[[], Grader]]:
    """Register a grader factory for a task kind."""

    def register(factory: Callable[[], Grader]) -> Callable[[], Grader]:
        _GRADERS[kind] = factory
        return factory

    return register


def get_grader(kind: TaskKind) -> Grader:
    """A fresh grader for ``kind``."""
    import lbt_agents.grading  # noqa: F401  (registers the built-in graders)

    try:
        return _GRADERS[kind]()
    except KeyError:
        raise ValueError(f"no grader for task kind {kind!r}; known: {sorted(_GRADERS)}") from None
