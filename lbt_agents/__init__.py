"""lbt-agents: LLM agents that learn by teaching, as LangGraph building blocks.

The public surface is what this module exports (and the public, non-underscore
submodules).  A classroom is the runtime context of every teaching graph::

    from lbt_agents import Classroom, load_config, m1_graph

    cfg = load_config("experiments/configs/quickstart.yaml")
    classroom = Classroom.from_config(cfg)  # its agents, task, and the profile's examiner
    out = await m1_graph(cfg.m1).ainvoke({"items": items}, context=classroom)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

# name -> the module that defines it; loaded on first use, so `import lbt_agents.stub` or
# `lbt --help` do not pay for LangGraph and LangChain.
_EXPORTS = {
    "lbt_agents.agents": ["Agent", "Examiner", "Student", "Teacher"],
    "lbt_agents.budget": ["Budget", "BudgetExhausted"],
    "lbt_agents.classroom": ["Classroom", "Lane", "who_teaches_whom"],
    "lbt_agents.config": ["AgentConfig", "BudgetConfig", "ClassroomConfig", "M1Config", "M2Config", "M3Config", "RunConfig",
                          "Sampling", "TaskConfig", "load_config"],
    "lbt_agents.errors": ["ConfigError", "DataError", "EndpointError", "LbtError"],
    "lbt_agents.llm": ["CallLimits", "ChatAgent", "Reply", "UsageMeter"],
    "lbt_agents.nodes": ["ClassroomSource", "exam_node", "intake_node", "lbt_reward_node", "m1_state",
                         "plan_exams_node", "resolve_classroom", "route_exams", "route_teaching", "score_pairs_node",
                         "select_node", "teach_node"],
    "lbt_agents.plan": ["Plan"],
    "lbt_agents.rationales": ["score_rationales"],
    "lbt_agents.runner": ["GraphRun", "arun_graph", "plan_graph", "run_graph"],
    "lbt_agents.state": ["merge"],
    "lbt_agents.testing": ["ScriptedChatModel"],
    "lbt_agents.types": ["ExamRecord", "ExamTask", "PairRecord", "PairResult", "PairScore", "Problem", "Selection",
                         "TaskKind", "TeachingItem", "TPResult", "Verdict"],
    "lbt_agents.graphs.m1_scoring": ["m1_graph"],
    "lbt_agents.graphs.m2_preferences": ["m2_graph"],
    "lbt_agents.graphs.m3_refinement": ["m3_graph"],
}  # fmt: skip
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

if TYPE_CHECKING:
    from lbt_agents.agents import Agent, Examiner, Student, Teacher
    from lbt_agents.budget import Budget, BudgetExhausted
    from lbt_agents.classroom import Classroom, Lane, who_teaches_whom
    from lbt_agents.config import (
        AgentConfig, BudgetConfig, ClassroomConfig, M1Config, M2Config, M3Config, RunConfig, Sampling, TaskConfig,
        load_config,
    )
    from lbt_agents.errors import ConfigError, DataError, EndpointError, LbtError
    from lbt_agents.graphs.m1_scoring import m1_graph
    from lbt_agents.graphs.m2_preferences import m2_graph
    from lbt_agents.graphs.m3_refinement import m3_graph
    from lbt_agents.llm import CallLimits, ChatAgent, Reply, UsageMeter
    from lbt_agents.nodes import (
        ClassroomSource, exam_node, intake_node, lbt_reward_node, m1_state, plan_exams_node, resolve_classroom,
        route_exams, route_teaching, score_pairs_node, select_node, teach_node,
    )
    from lbt_agents.plan import Plan
    from lbt_agents.rationales import score_rationales
    from lbt_agents.runner import GraphRun, arun_graph, plan_graph, run_graph
    from lbt_agents.state import merge
    from lbt_agents.testing import ScriptedChatModel
    from lbt_agents.types import (
        ExamRecord, ExamTask, PairRecord, PairResult, PairScore, Problem, Selection, TaskKind, TeachingItem,
        TPResult, Verdict,
    )

try:
    __version__ = version("lbt-agents")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0+unknown"


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'lbt_agents' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Agent", "AgentConfig", "Budget", "BudgetConfig", "BudgetExhausted", "CallLimits", "ChatAgent", "Classroom", "ClassroomConfig", "ClassroomSource",
    "ConfigError", "DataError", "EndpointError", "ExamRecord", "ExamTask", "Examiner", "GraphRun", "Lane",
    "LbtError", "M1Config", "M2Config", "M3Config", "PairRecord", "PairResult", "PairScore", "Plan", "Problem", "Reply",
    "RunConfig", "Sampling", "ScriptedChatModel", "Selection", "Student", "TPResult", "TaskConfig", "TaskKind",
    "Teacher", "TeachingItem", "UsageMeter", "Verdict", "__version__", "arun_graph", "exam_node", "intake_node",
    "lbt_reward_node", "load_config", "m1_graph", "m1_state", "m2_graph", "m3_graph", "merge", "plan_exams_node", "plan_graph",
    "resolve_classroom", "route_exams", "route_teaching", "run_graph", "score_pairs_node", "score_rationales",
    "select_node", "teach_node", "who_teaches_whom",
]  # fmt: skip
