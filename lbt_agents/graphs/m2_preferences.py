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
from typing_extensions import TypedDict

from graphs.m1_scoring import build_graph as build_m1
from lbt_agents.agents import Roster
from lbt_agents.config import M1Config, M2Config
from lbt_agents.preferences import PreferenceSettings, pairs_for_tp
from lbt_agents.types import TeachingItem


class M2State(TypedDict, total=False):
    items: list[TeachingItem]
    results: dict[str, Any]
    preferences: dict[str, list[dict[str, Any]]]


def scored_tps(roster: Roster, items: list[TeachingItem], results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each TP's teacher prompt and its scored samples, as the preference builder reads them."""
    out = []
    for item in items:
        result = results.get(item["tp"]["id"])
        if result is None:
            continue
        out.append(
            {
                "tp_id": item["tp"]["id"],
                "prompt": roster.teacher.messages(item["tp"]),
                "samples": [
                    {"id": p["id"], "text": p["text"], "correct": p["correct"], "lbt": p["lbt"]}
                    for p in result["pairs"]
                ],
            }
        )
    return out


def build_graph(roster: Roster, m1: M1Config, m2: M2Config, *, checkpointer: Any = None) -> Any:
    """Compile the M2 preference graph."""
    m1 = m1.model_copy(update={"greedy_baseline": False, "modes": ["sc", "max", "sum", "avg"]})

    def prefer(state: M2State) -> dict[str, Any]:
        tps = scored_tps(roster, state["items"], state["results"])
        rows = {}
        for mode in ("m2", "correctness"):
            settings = PreferenceSettings(
                weight=m2.weight, min_gap=m2.min_gap, max_pairs_per_tp=m2.max_pairs_per_tp, mode=mode
            )
            rows[mode] = [row for tp in tps for row in pairs_for_tp(tp, settings)]
        return {"preferences": rows}

    builder = StateGraph(M2State)
    builder.add_node("m1", build_m1(roster, m1))
    builder.add_node("prefer", prefer)
    builder.add_edge(START, "m1")
    builder.add_edge("m1", "prefer")
    builder.add_edge("prefer", END)
    return builder.compile(checkpointer=checkpointer, name="m2_preferences")
