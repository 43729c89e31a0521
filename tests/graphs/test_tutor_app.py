"""The M1 graph used as a subgraph inside another app, and langgraph.json."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from lbt_agents import Classroom, M1Config
from lbt_agents.graphs.tutor_app import tutor_graph

from tests.graphs.test_m1_scoring import ITEMS, classroom, models

ROOT = Path(__file__).resolve().parents[2]


async def test_m1_as_a_subgraph() -> None:
    m = models(students=1)
    app = tutor_graph(M1Config(pairs_per_tp=4))
    out = await app.ainvoke({"items": ITEMS}, context=Classroom.from_config(classroom(students=1), models=m))
    assert out["replies"] == ["What is 2 + 3? -> 5", "What is 10 + 5? -> 15"]
    assert len(m["s0"][0].calls) == 2 * 4 * 3


def test_langgraph_json_graphs_load_without_env_override() -> None:
    spec = json.loads((ROOT / "langgraph.json").read_text())
    assert "env" not in spec  # the shell's LBT_CONFIG (or the run's context) decides
    assert "m1_scoring" in spec["graphs"]
    for name, target in spec["graphs"].items():
        path, _, attr = target.partition(":")
        module = importlib.import_module(path.removeprefix("./").removesuffix(".py").replace("/", "."))
        graph = getattr(module, attr)
        assert graph.get_graph().nodes, name
        assert "lbt_config" in json.dumps(graph.get_context_jsonschema()), name
        assert "TPResult" in json.dumps(graph.get_output_jsonschema()), name
