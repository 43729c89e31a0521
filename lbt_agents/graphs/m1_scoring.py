"""M1: score each TR-TA pair by how well students learn from it, then select.

``intake`` → ``teach`` (one task per TP, via ``Send``) → ``plan`` → ``exam``
(one task per pair × EP × repetition × student, via ``Send``) → ``plan`` … →
``score`` → ``select``.

Without adaptive compute ``plan`` schedules every exam at once.  With it,
``plan`` skips TPs whose teacher answers all agree, examines one pair per
answer group and one EP per rung, drops pairs that can no longer win
(successive halving) and stops a TP after a rung in which every exam failed.
Exams already recorded in the state are never scheduled again, so a resumed
run picks up where it stopped; a new invocation on the same thread starts afresh.

Input: ``{"items": [TeachingItem, ...]}`` (an item with ``rationales`` is not
taught: its rationales are scored); output: ``{output_key: {tp_id: TPResult}}``.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from lbt_agents import (
    Classroom,
    ClassroomSource,
    M1Config,
    RunConfig,
    exam_node,
    intake_node,
    m1_state,
    plan_exams_node,
    route_exams,
    route_teaching,
    score_pairs_node,
    select_node,
    teach_node,
)


def m1_graph(
    m1: M1Config | None = None,
    *,
    output_key: str = "results",
    classroom: ClassroomSource = None,
    context_schema: type[Any] = Classroom,
    checkpointer: Any = None,
    name: str = "m1_scoring",
) -> CompiledStateGraph:
    """Compile the M1 graph.

    The classroom comes from the runtime context (``ainvoke(..., context=classroom)``)
    unless ``classroom`` fixes it or picks it from the context.  ``output_key`` names
    the results key, so several M1 subgraphs can live in one app.
    """
    m1 = m1 or M1Config()
    state, inputs, outputs = m1_state(output_key)
    builder = StateGraph(state, context_schema=context_schema, input_schema=inputs, output_schema=outputs)
    builder.add_node("intake", intake_node(output_key=output_key, classroom=classroom))
    builder.add_node("teach", teach_node(m1, classroom=classroom))
    builder.add_node("plan", plan_exams_node(m1, classroom=classroom))
    builder.add_node("exam", exam_node(classroom=classroom))
    builder.add_node("score", score_pairs_node(m1, classroom=classroom))
    builder.add_node("select", select_node(m1, output_key=output_key, classroom=classroom))
    builder.add_edge(START, "intake")
    builder.add_conditional_edges("intake", route_teaching, ["teach"])
    builder.add_edge("teach", "plan")
    builder.add_conditional_edges("plan", route_exams(m1), ["exam", "score", "plan"])
    builder.add_edge("exam", "plan")
    builder.add_edge("score", "select")
    builder.add_edge("select", END)
    return builder.compile(checkpointer=checkpointer, name=name)


def from_config(cfg: RunConfig) -> CompiledStateGraph:
    """The M1 graph of a run config (``lbt run lbt_agents.graphs.m1_scoring:from_config``)."""
    return m1_graph(cfg.m1)


def plan(cfg: RunConfig, inputs: dict[str, Any]) -> Any:
    """The requests and tokens this graph will ask for (``lbt m1 --dry-run``); see :mod:`lbt_agents.plan`."""
    from lbt_agents.plan import plan_m1

    return plan_m1(cfg, inputs["items"])
