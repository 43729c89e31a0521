"""The graphs that ``langgraph.json`` serves (``langgraph dev`` / LangGraph Platform).

Each run names its run config in the context: ``{"lbt_config": "path/to/run.yaml"}``
(default: ``$LBT_CONFIG`` of the server's environment).  The config's classroom
and M1 settings apply; its agents must point at running OpenAI-compatible
endpoints.  Every run on a thread computes fresh results for its items.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import get_runtime
from typing_extensions import TypedDict

from lbt_agents import Classroom, ConfigError, LbtError, RunConfig, TeachingItem, TPResult, load_config
from lbt_agents.graphs.m1_scoring import m1_graph


@dataclass
class ServerContext:
    """What a run on the server says about itself."""

    lbt_config: str | None = None
    """Path of the run config (YAML) on the server; default: ``$LBT_CONFIG``."""


class ServedM1State(TypedDict, total=False):
    items: list[TeachingItem]
    results: dict[str, TPResult]


class ServedM1Input(TypedDict):
    items: list[TeachingItem]


class ServedM1Output(TypedDict):
    results: dict[str, TPResult]


def config_path(context: Any) -> Path:
    """The run config a run's context names (or ``$LBT_CONFIG``); one clear error when none is named."""
    path = context.get("lbt_config") if isinstance(context, dict) else getattr(context, "lbt_config", None)
    path = path or os.environ.get("LBT_CONFIG")
    if not path:
        raise ConfigError("name the run config: context={'lbt_config': 'path/to/run.yaml'} (or set $LBT_CONFIG)")
    resolved = Path(path).resolve()
    if not resolved.is_file():
        raise ConfigError(f"config file not found: {resolved}")
    return resolved


@lru_cache(maxsize=16)
def _load(path: str, mtime_ns: int) -> tuple[RunConfig, Classroom, CompiledStateGraph]:
    cfg = load_config(path)
    classroom = Classroom.from_config(cfg)
    return cfg, classroom, m1_graph(cfg.m1)


@cache
def _shown(kind: type[LbtError]) -> type[Exception]:
    """``kind`` that is also a ``ValueError``: the LangGraph server shows a ValueError's message to the
    client and replaces any other exception's with "An internal error occurred"."""
    return type(kind.__name__, (kind, ValueError), {"__module__": kind.__module__, "__qualname__": kind.__qualname__})


async def _m1(state: ServedM1State, config: RunnableConfig) -> dict[str, Any]:
    try:
        path = config_path(get_runtime().context)
        _, classroom, graph = await asyncio.to_thread(lambda: _load(str(path), path.stat().st_mtime_ns))
        out = await graph.ainvoke({"items": state.get("items") or []}, config, context=classroom)
    except LbtError as exc:
        raise _shown(type(exc))(*exc.args) from exc
    return {"results": out["results"]}


def served_m1() -> CompiledStateGraph:
    """M1 for the server: ``{"items": [...]}`` → ``{"results": {tp_id: TPResult}}``."""
    builder = StateGraph(
        ServedM1State, context_schema=ServerContext, input_schema=ServedM1Input, output_schema=ServedM1Output
    )
    builder.add_node("m1", _m1)
    builder.add_edge(START, "m1")
    builder.add_edge("m1", END)
    return builder.compile(name="m1_scoring")


m1_scoring = served_m1()
