"""The M1 graph used as a subgraph inside another app, and langgraph.json."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from graphs.tutor_app import build_graph
from lbt_agents.agents import make_roster
from lbt_agents.config import M1Config

from tests.graphs.test_m1_scoring import ITEMS, classroom, models

ROOT = Path(__file__).resolve().parents[2]


async def test_m1_as_a_subgraph() -> None:
    m = models(students=1)
    app = build_graph(make_roster(classroom(students=1), models=m), M1Config(pairs_per_tp=4))
    out = await app.ainvoke({"items": ITEMS})
    assert out["replies"] == ["What is 2 + 3? -> 5", "What is 10 + 5? -> 15"]
    assert len(m["s0"][0].calls) == 2 * 4 * 3


def test_langgraph_json_graphs_build(tmp_path: Path, monkeypatch) -> None:
    spec = json.loads((ROOT / "langgraph.json").read_text())
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "classroom:\n"
        "  teacher: {name: teacher, model: m, base_url: 'http://127.0.0.1:9/v1'}\n"
        "  students: [{name: s, model: m, base_url: 'http://127.0.0.1:9/v1'}]\n"
    )
    monkeypatch.setenv("LBT_CONFIG", str(cfg))
    assert "m1_scoring" in spec["graphs"]
    for name, target in spec["graphs"].items():
        path, _, attr = target.partition(":")
        module = importlib.import_module(path.removeprefix("./").removesuffix(".py").replace("/", "."))
        graph = getattr(module, attr)({"configurable": {}})
        assert graph.get_graph().nodes, name
    m1 = importlib.import_module("graphs.m1_scoring").make_graph({"configurable": {"lbt_config": str(cfg)}})
    assert {"teach", "plan", "exam", "select"} <= set(m1.get_graph().nodes)
