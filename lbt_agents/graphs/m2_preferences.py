"""M2: turn LbT scores into preference data for DPO.

``m1`` (the M1 scoring graph as a subgraph, no greedy baseline) → ``prefer``:
each TR-TA pair gets score = w·correctness + (1−w)·LbT, and pairs of samples
whose scores differ by more than ``min_gap`` (at most ``max_pairs_per_tp`` per
TP, largest gaps first) become chosen/rejected rows.  The same samples also
give the correctness-only baseline's rows.

Input: ``{"items": [...]}``; output: ``{"results": ..., "preferences": {"m2": rows, "correctness": rows}}``.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from typing_extensions import TypedDict

from lbt_agents import Classroom, ClassroomSource, M1Config, M2Config, RunConfig, TeachingItem, TPResult, resolve_classroom
from lbt_agents.graphs.m1_scoring import m1_graph
from lbt_agents.preferences import PreferenceSettings, pairs_for_tp


class M2State(TypedDict, total=False):
    items: list[TeachingItem]
    results: dict[str, TPResult]
    preferences: dict[str, list[dict[str, Any]]]


def scored_tps(classroom: Classroom, items: list[TeachingItem], results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each TP's teacher prompt and its scored samples, as the preference builder reads them."""
    out = []
    for item in items:
        result = results.get(item["tp"]["id"])
        if result is None:
            continue
        out.append(
            {
                "tp_id": item["tp"]["id"],
                "prompt": classroom.teacher.messages(item["tp"]),
                "samples": [
                    {"id": p["id"], "text": p["text"], "correct": p["correct"], "lbt": p["lbt"]}
                    for p in result["pairs"]
                ],
            }
        )
    return out


def m2_graph(
    m1: M1Config | None = None,
    m2: M2Config | None = None,
    *,
    classroom: ClassroomSource = None,
    checkpointer: Any = None,
    name: str = "m2_preferences",
) -> CompiledStateGraph:
    """Compile the M2 preference graph."""
    m1 = (m1 or M1Config()).model_copy(update={"greedy_baseline": False, "modes": ["sc", "max", "sum", "avg"]})
    m2 = m2 or M2Config()

    def prefer(state: M2State) -> dict[str, Any]:
        tps = scored_tps(resolve_classroom(classroom), state["items"], state["results"])
        rows = {}
        for mode in ("m2", "correctness"):
            settings = PreferenceSettings(
                weight=m2.weight, min_gap=m2.min_gap, max_pairs_per_tp=m2.max_pairs_per_tp, mode=mode
            )
            rows[mode] = [row for tp in tps for row in pairs_for_tp(tp, settings)]
        return {"preferences": rows}

    builder = StateGraph(M2State, context_schema=Classroom)
    builder.add_node("m1", m1_graph(m1, classroom=classroom))
    builder.add_node("prefer", prefer)
    builder.add_edge(START, "m1")
    builder.add_edge("m1", "prefer")
    builder.add_edge("prefer", END)
    return builder.compile(checkpointer=checkpointer, name=name)


def from_config(cfg: RunConfig) -> CompiledStateGraph:
    return m2_graph(cfg.m1, cfg.m2)


def plan(cfg: RunConfig, inputs: dict[str, Any]) -> Any:
    """The requests and tokens this graph will ask for (M1 without the greedy baseline); see :mod:`lbt_agents.plan`."""
    from lbt_agents.plan import plan_m1

    return plan_m1(cfg, inputs["items"], greedy=False, graph="m2_preferences")
