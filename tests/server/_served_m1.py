"""A test graph for ``langgraph dev``: the M1 graph itself, so a thread holds M1's own state between runs.

(``langgraph.json``'s ``m1_scoring`` runs M1 as a subgraph, whose state starts empty in every run; served
as is, M1's second run on a thread starts from the first run's state, and its ``intake`` must reset it.)
The classroom comes from the run config the context names, as ``m1_scoring``'s does.  This file is
loaded by path, so it imports nothing from ``tests``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from lbt_agents import Classroom, M1Config, load_config, m1_graph
from lbt_agents.graphs.server import ServerContext, config_path

M1 = M1Config(pairs_per_tp=4)  # the scripted classroom's PAIRS


@lru_cache(maxsize=4)
def _classroom(path: str) -> Classroom:
    cfg = load_config(path)
    return Classroom.from_config(cfg.classroom, task=cfg.task.name, max_concurrency=cfg.max_concurrency)


def classroom_of(context: Any) -> Classroom:
    return _classroom(str(config_path(context)))


m1_direct = m1_graph(M1, classroom=classroom_of, context_schema=ServerContext, name="m1_direct")
