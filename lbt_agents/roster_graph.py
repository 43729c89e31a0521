"""Who teaches whom, as a networkx ``DiGraph`` built from a :class:`ClassroomConfig`.

Nodes are agent names with attributes ``config`` (the :class:`AgentConfig`),
``model``, ``persona`` and ``role`` (as configured).  An edge ``u -> v`` means
``u`` teaches ``v``.  Default edges: every teacher (``teacher`` and
``teachers``) teaches every student.  Explicit ``edges`` may also connect
students (peer teaching): a node teaches its out-neighbours and refines its
exemplars from their failures.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from lbt_agents.config import AgentConfig, ClassroomConfig
from lbt_agents.errors import ConfigError


@dataclass(frozen=True)
class Lane:
    """One teacher and the students it refines its exemplars from."""

    teacher: str
    students: tuple[str, ...]

    def label(self) -> str:
        return f"{self.teacher} → {', '.join(self.students)}"


def roster_graph(cfg: ClassroomConfig) -> nx.DiGraph:
    """The classroom as a DiGraph; unknown names, self-loops and duplicate names are ConfigErrors."""
    agents = cfg.agents()
    names = [a.name for a in agents]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"classroom: agent names must be unique across teacher, teachers and students: {dupes}")
    g = nx.DiGraph()
    for agent in agents:
        g.add_node(agent.name, config=agent, model=agent.model, persona=agent.persona, role=agent.role)
    teachers = [cfg.teacher, *cfg.teachers]
    if cfg.edges is None:
        g.add_edges_from((t.name, s.name) for t in teachers for s in cfg.students)
        return g
    for u, v in cfg.edges:
        for name in (u, v):
            if name not in g:
                raise ConfigError(f"classroom.edges: unknown agent {name!r} (agents: {', '.join(names)})")
        if u == v:
            raise ConfigError(f"classroom.edges: {u!r} cannot teach itself")
        g.add_edge(u, v)
    if g.number_of_edges() == 0:
        raise ConfigError("classroom.edges is empty: nobody teaches anybody")
    return g


def teachers(g: nx.DiGraph) -> list[str]:
    """Nodes that teach somebody, in the graph's insertion order."""
    return [n for n in g.nodes if g.out_degree(n) > 0]


def students_of(g: nx.DiGraph, teacher: str) -> list[str]:
    return list(g.successors(teacher))


def lanes(g: nx.DiGraph) -> list[Lane]:
    """One :class:`Lane` per teaching node."""
    return [Lane(t, tuple(students_of(g, t))) for t in teachers(g)]


def agent_config(g: nx.DiGraph, name: str) -> AgentConfig:
    return g.nodes[name]["config"]


def describe(g: nx.DiGraph) -> list[str]:
    """One line per teaching node: ``teacher (model) → student (model, persona), ...``."""

    def who(n: str) -> str:
        attrs = g.nodes[n]
        extra = f", persona {attrs['persona']}" if attrs.get("persona") else ""
        return f"{n} ({attrs['model']}{extra})"

    return [f"{who(t)} → {', '.join(who(s) for s in students_of(g, t))}" for t in teachers(g)]
