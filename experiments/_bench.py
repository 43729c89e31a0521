"""Shared pieces of the M1 benchmarks (not tests): servers, configs, metrics, reports."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "experiments" / "results"

from lbt_agents.config import RunConfig, load_config  # noqa: E402


@contextlib.contextmanager
def server(model: str, base_url: str | None, *, dev_mode: bool = False, kv_cache_gib: float = 4.0) -> Iterator[str]:
    """An existing endpoint, or a vLLM server started (and stopped) here."""
    if base_url:
        yield base_url
        return
    from lbt_agents.serving import VllmServer

    if dev_mode:  # enables POST /reset_prefix_cache, so each timed phase starts cold
        os.environ["VLLM_SERVER_DEV_MODE"] = "1"
    with VllmServer(model, kv_cache_gib=kv_cache_gib) as endpoint:
        yield endpoint.base_url


def m1_arguments(doc: str | None) -> argparse.ArgumentParser:
    """The arguments the M1 benchmarks share: server, model and run size."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--config", default=str(ROOT / "experiments/configs/quickstart.yaml"))
    ap.add_argument("--base-url", help="Use this running server instead of starting one.")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tps", type=int, default=8)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--eps", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=32)
    return ap


def size_overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` overrides for the benchmark's run size and model."""
    return [
        f"task.limit={args.tps}", f"task.eps_per_tp={args.eps}", f"m1.pairs_per_tp={args.pairs}",
        f"max_concurrency={args.concurrency}", f"classroom.teacher.model={args.model}",
        f"classroom.students.0.model={args.model}",
    ]


def run_config(path: str | Path, base_url: str, *overrides: str) -> RunConfig:
    cfg = load_config(path, list(overrides))
    agents = [cfg.classroom.teacher, *cfg.classroom.students]
    for agent in agents:
        agent.base_url = base_url
    return cfg


def exam_messages(student: Any, items: list[dict[str, Any]], results: dict[str, Any]) -> list[list[dict[str, str]]]:
    """The prompt of every exam an M1 run held, rebuilt from its results."""
    by_id = {it["tp"]["id"]: it for it in items}
    prompts = []
    for tp_id, res in results.items():
        item = by_id[tp_id]
        eps = {ep["id"]: ep for ep in item["eps"]}
        for pair in res["pairs"]:
            prompts += [student.messages(item["tp"], pair["text"], eps[exam["ep_id"]]) for exam in pair["exams"]]
    return prompts


def metric(base_url: str, name: str) -> float:
    text = httpx.get(base_url.removesuffix("/v1") + "/metrics", timeout=10).text
    return sum(float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def reset_prefix_cache(base_url: str) -> bool:
    try:
        return httpx.post(base_url.removesuffix("/v1") + "/reset_prefix_cache", timeout=30).status_code == 200
    except httpx.HTTPError:
        return False


def report(name: str, data: dict[str, Any], table: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2))
    (RESULTS / f"{name}.md").write_text(table)
    print(table)
