"""lbt-agents: LLM agents that learn by teaching, as LangGraph building blocks.

The public surface is what this module exports (and the public, non-underscore
submodules).  A classroom is the runtime context of every teaching graph::

    from lbt_agents import Classroom, load_config, m1_graph

    cfg = load_config("experiments/configs/quickstart.yaml")
    classroom = Classroom.from_config(cfg.classroom, task=cfg.task.name)
    out = await m1_graph(cfg.m1).ainvoke({"items": items}, context=classroom)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from lbt_agents.agents import Agent, Examiner, Student, Teacher
from lbt_agents.classroom import Classroom, Lane, who_teaches_whom
from lbt_agents.config import (
    AgentConfig,
    ClassroomConfig,
    M1Config,
    M2Config,
    M3Config,
    RunConfig,
    Sampling,
    TaskConfig,
    load_config,
)
from lbt_agents.errors import ConfigError, DataError, EndpointError, LbtError
from lbt_agents.llm import CallLimits, ChatAgent, Reply, UsageMeter
from lbt_agents.nodes import (
    ClassroomSource,
    exam_node,
    intake_node,
    lbt_reward_node,
    m1_state,
    plan_exams_node,
    resolve_classroom,
    route_exams,
    route_teaching,
    score_pairs_node,
    select_node,
    teach_node,
)
from lbt_agents.rationales import score_rationales
from lbt_agents.runner import GraphRun, arun_graph, run_graph
from lbt_agents.state import merge
from lbt_agents.testing import ScriptedChatModel
from lbt_agents.types import (
    ExamRecord,
    ExamTask,
    PairRecord,
    PairResult,
    PairScore,
    Problem,
    Selection,
    TaskKind,
    TeachingItem,
    TPResult,
    Verdict,
)

try:
    __version__ = version("lbt-agents")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0+unknown"

_GRAPHS = {
    "m1_graph": "lbt_agents.graphs.m1_scoring",
    "m2_graph": "lbt_agents.graphs.m2_preferences",
    "m3_graph": "lbt_agents.graphs.m3_refinement",
}


def __getattr__(name: str) -> Any:
    """The graph builders load on first use (they are built from this package's public API)."""
    if name in _GRAPHS:
        import importlib

        return getattr(importlib.import_module(_GRAPHS[name]), name)
    raise AttributeError(f"module 'lbt_agents' has no attribute {name!r}")


__all__ = [
    "Agent", "AgentConfig", "CallLimits", "ChatAgent", "Classroom", "ClassroomConfig", "ClassroomSource",
    "ConfigError", "DataError", "EndpointError", "ExamRecord", "ExamTask", "Examiner", "GraphRun", "Lane",
    "LbtError", "M1Config", "M2Config", "M3Config", "PairRecord", "PairResult", "PairScore", "Problem", "Reply",
    "RunConfig", "Sampling", "ScriptedChatModel", "Selection", "Student", "TPResult", "TaskConfig", "TaskKind",
    "Teacher", "TeachingItem", "UsageMeter", "Verdict", "__version__", "arun_graph", "exam_node", "intake_node",
    "lbt_reward_node", "load_config", "m1_graph", "m1_state", "m2_graph", "m3_graph", "merge", "plan_exams_node",
    "resolve_classroom", "route_exams", "route_teaching", "run_graph", "score_pairs_node", "score_rationales",
    "select_node", "teach_node", "who_teaches_whom",
]  # fmt: skip
