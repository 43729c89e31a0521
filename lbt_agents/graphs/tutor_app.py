"""Example: the M1 graph as a subgraph inside another LangGraph app.

A small "tutor" app takes questions, lets the M1 graph pick the answer its
students learned best from, and writes a reply per question.  The compiled
M1 graph is added as a node: it reads the app's ``items`` and writes back
``results`` (the keys the two graphs share); the classroom is the app's
runtime context.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from typing_extensions import TypedDict

from lbt_agents import Classroom, M1Config, RunConfig, TeachingItem, TPResult
from lbt_agents.config import SelectionMode
from lbt_agents.graphs.m1_scoring import m1_graph


class TutorState(TypedDict, total=False):
    items: list[TeachingItem]
    results: dict[str, TPResult]
    replies: list[str]


def tutor_graph(m1: M1Config | None = None, *, mode: SelectionMode = "max") -> CompiledStateGraph:
    """An app graph with M1 inside: ``{"items": [...]}`` -> ``{"replies": [...]}``."""

    def check(state: TutorState) -> dict[str, Any]:
        if not state.get("items"):
            raise ValueError("the tutor needs at least one teaching item")
        return {}

    def reply(state: TutorState) -> dict[str, Any]:
        lines = []
        for item in state["items"]:
            chosen = state["results"][item["tp"]["id"]]["selections"][mode]
            lines.append(f"{item['tp']['question']} -> {chosen['answer']}")
        return {"replies": lines}

    app = StateGraph(TutorState, context_schema=Classroom)
    app.add_node("check", check)
    app.add_node("m1", m1_graph(m1))
    app.add_node("reply", reply)
    app.add_edge(START, "check")
    app.add_edge("check", "m1")
    app.add_edge("m1", "reply")
    app.add_edge("reply", END)
    return app.compile(name="tutor_app")


def from_config(cfg: RunConfig) -> CompiledStateGraph:
    return tutor_graph(cfg.m1)
