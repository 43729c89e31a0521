"""The classroom: its agents, its examiner and who teaches whom.

A :class:`Classroom` is the runtime context of every teaching graph
(``await graph.ainvoke(inputs, context=classroom)``), so one compiled graph
serves any classroom.  Who teaches whom is a networkx ``DiGraph`` whose nodes
are agent names (attributes ``model``, ``persona``, ``role``); an edge
``u -> v`` means ``u`` teaches ``v``.  By default every teacher teaches every
student; explicit edges may also connect students (peer teaching).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from langchain_core.language_models import BaseChatModel

from lbt_agents.agents import Examiner, Student, Teacher
from lbt_agents.budget import Budget
from lbt_agents.cache import CallCache
from lbt_agents.config import ClassroomConfig, RunConfig
from lbt_agents.errors import ConfigError
from lbt_agents.llm import CallLimits, ChatAgent, UsageMeter


@dataclass(frozen=True)
class Lane:
    """One teacher and the students it teaches."""

    teacher: str
    students: tuple[str, ...]

    def label(self) -> str:
        return f"{self.teacher} → {', '.join(self.students)}"


def who_teaches_whom(cfg: ClassroomConfig) -> nx.DiGraph:
    """The classroom config's teaching graph (checked: unknown names, self-loops, duplicates)."""
    return _teaching_graph(
        [(a.name, {"model": a.model, "persona": a.persona, "role": a.role}) for a in cfg.agents()],
        [t.name for t in (cfg.teacher, *cfg.teachers)],
        [s.name for s in cfg.students],
        cfg.edges,
    )


def _teaching_graph(
    nodes: Sequence[tuple[str, dict[str, Any]]],
    teachers: Sequence[str],
    students: Sequence[str],
    edges: Iterable[tuple[str, str]] | None,
) -> nx.DiGraph:
    names = [n for n, _ in nodes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"classroom: agent names must be unique across teacher, teachers and students: {dupes}")
    if not students:
        raise ConfigError("classroom: it needs at least one student")
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    if edges is None:
        g.add_edges_from((t, s) for t in teachers for s in students)
        return g
    for u, v in edges:
        for name in (u, v):
            if name not in g:
                raise ConfigError(
                    f"classroom.edges: unknown agent {name!r} (agents: {', '.join(names)}); "
                    "name agents of the classroom only"
                )
        if u == v:
            raise ConfigError(f"classroom.edges: {u!r} cannot teach itself")
        g.add_edge(u, v)
    if g.number_of_edges() == 0:
        raise ConfigError("classroom.edges is empty: nobody teaches anybody")
    return g


def lanes(g: nx.DiGraph) -> list[Lane]:
    """One :class:`Lane` per node that teaches somebody, in insertion order."""
    return [Lane(n, tuple(g.successors(n))) for n in g.nodes if g.out_degree(n) > 0]


def describe(g: nx.DiGraph) -> list[str]:
    """One line per teaching node: ``teacher (model) → student (model, persona), ...``."""

    def who(n: str) -> str:
        attrs = g.nodes[n]
        extra = f", persona {attrs['persona']}" if attrs.get("persona") else ""
        return f"{n} ({attrs.get('model')}{extra})"

    return [f"{who(lane.teacher)} → {', '.join(who(s) for s in lane.students)}" for lane in lanes(g)]


@dataclass(frozen=True, eq=False)
class Classroom:
    """Teachers, students, an examiner and who teaches whom.

    Build one with :meth:`from_config` (agents talk to OpenAI-compatible
    endpoints, or to the chat models you pass), or from agents directly.
    """

    teachers: tuple[Teacher, ...]
    students: tuple[Student, ...]
    examiner: Examiner = field(default_factory=Examiner)
    edges: tuple[tuple[str, str], ...] | None = None
    """Who teaches whom as (teacher, student) names; ``None``: every teacher teaches every student."""
    meter: UsageMeter = field(default_factory=UsageMeter)
    graph: nx.DiGraph = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.teachers:
            raise ConfigError("classroom: it needs at least one teacher")
        agents = [*self.teachers, *self.students]
        nodes = [(a.name, {"model": a.chat.cfg.model, "persona": a.persona, "role": role})
                 for a, role in zip(agents, ["teacher"] * len(self.teachers) + ["student"] * len(self.students))]
        graph = _teaching_graph(nodes, [t.name for t in self.teachers], [s.name for s in self.students], self.edges)
        object.__setattr__(self, "graph", graph)
        object.__setattr__(self, "_chats", {a.name: a.chat for a in agents})
        object.__setattr__(self, "_task", self.teachers[0].task)
        object.__setattr__(self, "_prompts", self.teachers[0].prompts)

    @classmethod
    def from_config(
        cls,
        cfg: ClassroomConfig | RunConfig,
        *,
        task: str | None = None,
        models: Mapping[str, BaseChatModel | Sequence[BaseChatModel]] | None = None,
        cache: CallCache | None = None,
        max_concurrency: int | None = None,
        examiner: Examiner | None = None,
        budget: Budget | None = None,
    ) -> Classroom:
        """The agents of ``cfg``; ``models`` maps agent names to chat models (tests, custom
        providers), other agents get ``ChatOpenAI`` clients for their endpoints; ``budget``
        caps the requests and tokens of all of them together.

        Given a whole :class:`RunConfig`, the task, concurrency and examiner (its profile's grading
        rules) come from it too; given its ``classroom`` alone, the examiner grades by the default rules.
        """
        if isinstance(cfg, RunConfig):
            from lbt_agents.runner import examiner_for

            task = task if task is not None else cfg.task.name
            max_concurrency = max_concurrency if max_concurrency is not None else cfg.max_concurrency
            examiner = examiner or examiner_for(cfg)
            cfg = cfg.classroom
        max_concurrency = 64 if max_concurrency is None else max_concurrency
        models = dict(models or {})
        for name in models:
            if name not in {a.name for a in cfg.agents()}:
                raise ConfigError(f"models: no agent named {name!r} in the classroom")
        meter, limits = UsageMeter(), CallLimits(max_concurrency, budget=budget)

        def chat(agent_cfg: Any) -> ChatAgent:
            given = models.get(agent_cfg.name)
            if isinstance(given, BaseChatModel):
                given = [given]
            return ChatAgent(agent_cfg, models=given, cache=cache, meter=meter, limits=limits)

        return cls(
            teachers=tuple(Teacher(chat(t), task=task, prompts=cfg.prompts) for t in (cfg.teacher, *cfg.teachers)),
            students=tuple(Student(chat(s), task=task, prompts=cfg.prompts) for s in cfg.students),
            examiner=examiner or Examiner(),
            edges=None if cfg.edges is None else tuple(tuple(e) for e in cfg.edges),  # type: ignore[misc]
            meter=meter,
        )

    @property
    def teacher(self) -> Teacher:
        """The first teacher (M1's)."""
        return self.teachers[0]

    @property
    def task(self) -> str | None:
        return self._task  # type: ignore[attr-defined]

    @property
    def names(self) -> list[str]:
        return list(self._chats)  # type: ignore[attr-defined]

    def _chat(self, name: str) -> ChatAgent:
        try:
            return self._chats[name]  # type: ignore[attr-defined]
        except KeyError:
            raise ConfigError(f"classroom has no agent {name!r} (agents: {', '.join(self.names)})") from None

    async def aclose(self) -> None:
        """Close the HTTP connections this event loop's requests opened."""
        for chat in {id(c): c for c in self._chats.values()}.values():  # type: ignore[attr-defined]
            await chat.aclose()

    def as_teacher(self, name: str) -> Teacher:
        """Agent ``name`` in the teacher's role (a student teaches in peer teaching)."""
        return Teacher(self._chat(name), task=self.task, prompts=self._prompts)  # type: ignore[attr-defined]

    def as_student(self, name: str) -> Student:
        """Agent ``name`` in the student's role."""
        return Student(self._chat(name), task=self.task, prompts=self._prompts)  # type: ignore[attr-defined]

    def students_of(self, teacher: str) -> list[str]:
        return list(self.graph.successors(teacher))

    def lanes(self) -> list[Lane]:
        return lanes(self.graph)

    def describe(self) -> list[str]:
        return describe(self.graph)
