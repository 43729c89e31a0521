"""Example: the M1 graph as a subgraph inside another LangGraph app.

A small "tutor" app takes questions, lets the M1 graph pick the answer its
students learned best from, and writes a reply per question.  The compiled
M1 graph is added as a node: it reads the app's ``items`` and writes back
``results`` (the keys the two graphs share).
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from graphs.m1_scoring import build_graph as build_m1
from lbt_agents.agents import Roster
from lbt_agents.config import M1Config, SelectionMode
from lbt_agents.types import TeachingItem


class TutorState(TypedDict, total=False):
    items: list[TeachingItem]
    results: dict[str, Any]
    replies: list[str]


def build_graph(roster: Roster, m1: M1Config, *, mode: SelectionMode = "max") -> Any:
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

    app = StateGraph(TutorState)
    app.add_node("check", check)
    app.add_node("m1", build_m1(roster, m1))
    app.add_node("reply", reply)
    app.add_edge(START, "check")
    app.add_edge("check", "m1")
    app.add_edge("m1", "reply")
    app.add_edge("reply", END)
    return app.compile(name="tutor_app")
