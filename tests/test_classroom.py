"""Who teaches whom: the classroom's teaching graph, from a ClassroomConfig or from agents."""

from __future__ import annotations

import pytest

from lbt_agents.config import AgentConfig, ClassroomConfig
from lbt_agents.errors import ConfigError
from lbt_agents.classroom import Lane, describe, lanes, who_teaches_whom as roster_graph


def agent(name: str, role: str = "student", **kw) -> AgentConfig:
    return AgentConfig(name=name, role=role, **kw)


def test_default_one_teacher_teaches_every_student() -> None:
    cfg = ClassroomConfig(teacher=agent("t", "teacher", model="qwen2.5-coder-0.5b"),
                          students=[agent("a", persona="careful"), agent("b")])
    g = roster_graph(cfg)
    assert sorted(g.edges) == [("t", "a"), ("t", "b")]
    assert lanes(g) == [Lane("t", ("a", "b"))]
    assert g.nodes["a"]["persona"] == "careful" and g.nodes["t"]["model"] == "qwen2.5-coder-0.5b"
    assert describe(g) == ["t (qwen2.5-coder-0.5b) → a (smollm2-135m, persona careful), b (smollm2-135m)"]


def test_several_teachers_default_to_teaching_everyone() -> None:
    cfg = ClassroomConfig(teacher=agent("t1", "teacher"), teachers=[agent("t2", "teacher")],
                          students=[agent("a"), agent("b")])
    g = roster_graph(cfg)
    assert [lane.teacher for lane in lanes(g)] == ["t1", "t2"]
    assert list(g.successors("t2")) == ["a", "b"]


def test_explicit_edges_with_peer_teaching() -> None:
    cfg = ClassroomConfig(teacher=agent("t", "teacher"), teachers=[agent("u", "teacher")],
                          students=[agent("a"), agent("b"), agent("c")],
                          edges=[("t", "a"), ("u", "b"), ("u", "c"), ("a", "c")])
    g = roster_graph(cfg)
    assert lanes(g) == [Lane("t", ("a",)), Lane("u", ("b", "c")), Lane("a", ("c",))]
    assert g.in_degree("c") == 2


@pytest.mark.parametrize(
    ("edges", "message"),
    [([("t", "zz")], "unknown agent 'zz'"), ([("a", "a")], "cannot teach itself"), ([], "edges is empty")],
)
def test_bad_edges_are_config_errors(edges, message) -> None:
    cfg = ClassroomConfig(teacher=agent("t", "teacher"), students=[agent("a")], edges=edges)
    with pytest.raises(ConfigError, match=message):
        roster_graph(cfg)


def test_names_must_be_unique_across_roles() -> None:
    cfg = ClassroomConfig(teacher=agent("x", "teacher"), students=[agent("x")])
    with pytest.raises(ConfigError, match=r"unique.*\['x'\]"):
        roster_graph(cfg)
